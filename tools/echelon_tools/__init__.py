"""Echelon's tools, not the product: the fake LLM upstreams (`echelon fake-provider`) and the
live demo (`echelon demo`). They use the sidecar's package; the sidecar never imports them."""

__all__: list[str] = []
