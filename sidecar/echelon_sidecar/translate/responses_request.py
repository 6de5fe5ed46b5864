"""OpenAI Responses API request (``POST /v1/responses``) → canonical OpenAI chat request.

The sidecar keeps no server-side state: every call carries the whole conversation in
``input``, and nothing is stored (``store: true`` is served, but the answer says
``store: false``). What needs stored state is refused with a 400 naming the field:
``previous_response_id``, ``conversation``, ``prompt``, ``background``, ``item_reference``
items and file ids.

==============================  =============================================================
Responses                       canonical OpenAI chat
==============================  =============================================================
``instructions``                a ``system`` message first
``input`` string                one ``user`` message
message items (``type:          a message of the same role; ``input_text`` → text part,
message`` or role only)         ``input_image`` → ``image_url`` part, ``input_file`` (inline
                                data) → ``file`` part; assistant ``output_text`` /
                                ``refusal`` parts → the assistant's text
``function_call`` items         ``tool_calls`` of an assistant message (merged into the
                                assistant message right before them)
``function_call_output``        a ``tool`` message (``call_id`` → ``tool_call_id``)
``reasoning`` items             dropped: reasoning is never replayed to another provider
function tools                  function tools (``name``, ``description``, ``parameters``,
                                ``strict``); built-in tools (web search, file search, ...)
                                are refused
``tool_choice``                 ``none`` / ``auto`` / ``required``; ``{type: function, name}``
                                → named function; ``allowed_tools`` → canonical allowed_tools
``text.format``                 ``response_format`` (text / json_object / json_schema);
``text.verbosity``              ``verbosity``
``max_output_tokens``           ``max_completion_tokens``
``reasoning.effort``            ``reasoning_effort``
temperature, top_p,             same names
parallel_tool_calls, user,
safety_identifier, service_tier,
prompt_cache_key
``stream``                      ``stream`` + ``stream_options.include_usage``
==============================  =============================================================

Accepted and not sent upstream (they do not change the answer): ``store``, ``metadata``
(echoed back), ``include``, ``truncation``, ``max_tool_calls``, ``stream_options``,
``reasoning.summary`` (no reasoning summaries are produced).
"""

from __future__ import annotations

from typing import Any

from ._common import items, name_at, number, obj, str_at
from .errors import InvalidRequest

__all__ = ["StatefulFeature", "responses_echo", "responses_to_openai_request"]

_STATEFUL = {
    "previous_response_id": "cannot continue a stored response",
    "conversation": "cannot append to a stored conversation",
    "prompt": "cannot use a stored prompt template",
}
_NO_STATE = ("this sidecar keeps no server-side state (nothing is stored), so it {what}: send "
             "the whole conversation in 'input' on every call (the earlier input items and "
             "the output items you got back) and leave '{field}' out")
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_PASSED = ("temperature", "top_p")
_HINTS = ("user", "safety_identifier", "service_tier", "prompt_cache_key")


class StatefulFeature(InvalidRequest):
    """A field or item this stateless gateway refuses; ``code`` is the error code to answer."""

    def __init__(self, field_path: str, message: str, code: str) -> None:
        super().__init__(field_path, message)
        self.code = code


def responses_to_openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """Translate a ``/v1/responses`` request body into the canonical chat form."""
    _refuse_state(body)
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        messages.append({"role": "system", "content": str_at(instructions, "instructions")})
    messages.extend(_input_messages(body.get("input")))
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    for key in _PASSED:
        if number(body, key) is not None:
            out[key] = body[key]
    for key in _HINTS:
        if body.get(key) is not None:
            out[key] = str_at(body[key], key)
    limit = body.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidRequest("max_output_tokens", "must be a positive integer")
        out["max_completion_tokens"] = limit
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise InvalidRequest("parallel_tool_calls", "must be true or false")
        out["parallel_tool_calls"] = parallel
    _tools(body, out)
    _text(body, out)
    _reasoning(body, out)
    if body.get("top_logprobs"):
        raise StatefulFeature("top_logprobs", "log probabilities are not returned by "
                              "this sidecar's /v1/responses", "unsupported_top_logprobs")
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def responses_echo(body: dict[str, Any]) -> dict[str, Any]:
    """The request fields a Response object repeats (call after the translation checked
    them): instructions, tools, tool choice, text and reasoning settings, limits."""
    text = obj(body.get("text"), "text")
    reasoning = obj(body.get("reasoning"), "reasoning")
    return {
        "instructions": body.get("instructions"),
        "metadata": body.get("metadata") or {},
        "max_output_tokens": body.get("max_output_tokens"),
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "text": {"format": {"type": "text"}, **text},
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
        "store": False,  # nothing is ever stored, whatever the request asked
        "background": False,
        "previous_response_id": None,
    }


# -- refusals --------------------------------------------------------------------------------------

def _refuse_state(body: dict[str, Any]) -> None:
    for field, what in _STATEFUL.items():
        if body.get(field) is not None:
            raise StatefulFeature(field, _NO_STATE.format(what=what, field=field),
                                  f"unsupported_{field}")
    if body.get("background"):
        raise StatefulFeature("background", "background responses need stored state, which "
                              "this sidecar does not keep: leave 'background' out and wait "
                              "for the answer (or stream it)", "unsupported_background")
    if body.get("input") is None:
        raise InvalidRequest("input", "is required: a string, or a list of input items "
                             "holding the whole conversation")


# -- input -----------------------------------------------------------------------------------------

def _input_messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise InvalidRequest("input", "must be a string or a non-empty list of input items")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        path = f"input[{i}]"
        item = obj(item, path)
        kind = item.get("type", "message" if "role" in item else None)
        if kind is None:
            raise InvalidRequest(path, "must be a message (role and content) or an item with "
                                 "a type")
        if kind == "message":
            out.append(_message(item, path))
        elif kind == "function_call":
            _function_call(out, item, path)
        elif kind == "function_call_output":
            out.append(_function_output(item, path))
        elif kind == "reasoning":
            continue  # another provider cannot read it; the visible answer carries the turn
        elif kind == "item_reference":
            raise StatefulFeature(f"{path}.type", "an item_reference points at a stored item "
                                  "and this sidecar stores none: send the item itself",
                                  "unsupported_item_reference")
        else:
            raise StatefulFeature(f"{path}.type", f"input items of type {kind!r} are not "
                                  "served (messages, function_call, function_call_output and "
                                  "reasoning are)", "unsupported_input_item")
    if not any(m["role"] not in ("system", "developer") for m in out):
        raise InvalidRequest("input", "holds no message to answer")
    return out


def _message(item: dict[str, Any], path: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InvalidRequest(f"{path}.role", "must be user, assistant, system or developer")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = items(content, f"{path}.content")
    if role == "assistant":
        return {"role": "assistant", "content": _assistant_text(parts, f"{path}.content")}
    converted = [_part(part, f"{path}.content[{j}]") for j, part in enumerate(parts)]
    if role in ("system", "developer") and any(p["type"] != "text" for p in converted):
        raise InvalidRequest(f"{path}.content", f"a {role} message holds text only")
    return {"role": role, "content": converted}


def _assistant_text(parts: list[Any], path: str) -> str:
    texts: list[str] = []
    for j, part in enumerate(parts):
        part = obj(part, f"{path}[{j}]")
        kind = part.get("type")
        if kind in ("output_text", "input_text", "text"):
            texts.append(str_at(part.get("text"), f"{path}[{j}].text"))
        elif kind == "refusal":
            texts.append(str_at(part.get("refusal"), f"{path}[{j}].refusal"))
        else:
            raise InvalidRequest(f"{path}[{j}].type", "an assistant message holds output_text "
                                 "and refusal parts")
    return "".join(texts)


def _part(part: Any, path: str) -> dict[str, Any]:
    part = obj(part, path)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str_at(part.get("text"), f"{path}.text")}
    if kind == "input_image":
        _no_file_id(part, path)
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise InvalidRequest(f"{path}.image_url", "must be a URL or a data: URL")
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        _no_file_id(part, path)
        if part.get("file_url") is not None:
            raise StatefulFeature(f"{path}.file_url", "files by URL are not fetched: send the "
                                  "file inline in file_data", "unsupported_file_url")
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            raise InvalidRequest(f"{path}.file_data", "must be the file as a data: URL")
        file = {"file_data": data, "filename": str_at(part.get("filename"), f"{path}.filename")
                or "document"}
        return {"type": "file", "file": file}
    raise InvalidRequest(f"{path}.type", "must be input_text, input_image or input_file")


def _no_file_id(part: dict[str, Any], path: str) -> None:
    if part.get("file_id") is not None:
        raise StatefulFeature(f"{path}.file_id", "file ids name files stored upstream, which "
                              "this sidecar cannot reach across providers: send the content "
                              "inline", "unsupported_file_id")


def _function_call(out: list[dict[str, Any]], item: dict[str, Any], path: str) -> None:
    arguments = item.get("arguments", "")
    if not isinstance(arguments, str):
        raise InvalidRequest(f"{path}.arguments", "must be a JSON string")
    call = {"id": name_at(item.get("call_id"), f"{path}.call_id"), "type": "function",
            "function": {"name": name_at(item.get("name"), f"{path}.name"),
                         "arguments": arguments}}
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_output(item: dict[str, Any], path: str) -> dict[str, Any]:
    call_id = name_at(item.get("call_id"), f"{path}.call_id")
    output = item.get("output")
    if isinstance(output, str):
        content: Any = output
    else:
        parts = [_part(p, f"{path}.output[{j}]")
                 for j, p in enumerate(items(output, f"{path}.output"))]
        if any(p["type"] != "text" for p in parts):
            raise StatefulFeature(f"{path}.output", "function call outputs carry text only "
                                  "here", "unsupported_function_call_output")
        content = parts
    return {"role": "tool", "tool_call_id": call_id, "content": content}


# -- tools, text format, reasoning -----------------------------------------------------------------

def _tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = items(body.get("tools"), "tools")
    converted = []
    for i, tool in enumerate(tools):
        tool = obj(tool, f"tools[{i}]")
        kind = tool.get("type")
        if kind != "function":
            raise StatefulFeature(f"tools[{i}].type", f"built-in tools ({kind!r}) are not "
                                  "served by this sidecar, whose upstreams are chat models of "
                                  "several providers: declare function tools and run them "
                                  "yourself", "unsupported_tool")
        fn: dict[str, Any] = {"name": name_at(tool.get("name"), f"tools[{i}].name")}
        description = str_at(tool.get("description"), f"tools[{i}].description")
        if description:
            fn["description"] = description
        fn["parameters"] = obj(tool.get("parameters"), f"tools[{i}].parameters") or {
            "type": "object", "properties": {}}
        if tool.get("strict") is not None:
            fn["strict"] = bool(tool["strict"])
        converted.append({"type": "function", "function": fn})
    if converted:
        out["tools"] = converted
    choice = body.get("tool_choice")
    if choice is not None:
        out["tool_choice"] = _tool_choice(choice)


def _tool_choice(choice: Any) -> Any:
    if choice in ("none", "auto", "required"):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function":
        return {"type": "function",
                "function": {"name": name_at(choice.get("name"), "tool_choice.name")}}
    if kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise InvalidRequest("tool_choice.mode", "must be auto or required")
        names = []
        for j, tool in enumerate(items(choice.get("tools"), "tool_choice.tools")):
            tool = obj(tool, f"tool_choice.tools[{j}]")
            if tool.get("type") != "function":
                raise StatefulFeature(f"tool_choice.tools[{j}].type", "only function tools "
                                      "are served", "unsupported_tool")
            names.append({"type": "function", "function": {
                "name": name_at(tool.get("name"), f"tool_choice.tools[{j}].name")}})
        return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": names}}
    if isinstance(kind, str):
        raise StatefulFeature("tool_choice.type", f"a tool choice of type {kind!r} names a "
                              "built-in tool, which this sidecar does not serve",
                              "unsupported_tool_choice")
    raise InvalidRequest("tool_choice", "must be none, auto, required, {type: function, name} "
                         "or {type: allowed_tools, mode, tools}")


def _text(body: dict[str, Any], out: dict[str, Any]) -> None:
    text = obj(body.get("text"), "text")
    verbosity = text.get("verbosity")
    if verbosity is not None:
        if verbosity not in ("low", "medium", "high"):
            raise InvalidRequest("text.verbosity", "must be low, medium or high")
        out["verbosity"] = verbosity
    fmt = obj(text.get("format"), "text.format")
    kind = fmt.get("type")
    if not fmt or kind == "text":
        return
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
        return
    if kind != "json_schema":
        raise InvalidRequest("text.format.type", "must be text, json_object or json_schema")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequest("text.format.schema", "must be a JSON schema object")
    spec: dict[str, Any] = {"name": name_at(fmt.get("name"), "text.format.name"),
                            "schema": schema}
    description = str_at(fmt.get("description"), "text.format.description")
    if description:
        spec["description"] = description
    if fmt.get("strict") is not None:
        spec["strict"] = bool(fmt["strict"])
    out["response_format"] = {"type": "json_schema", "json_schema": spec}


def _reasoning(body: dict[str, Any], out: dict[str, Any]) -> None:
    reasoning = obj(body.get("reasoning"), "reasoning")
    effort = reasoning.get("effort")
    if effort is None:
        return
    if effort not in _EFFORTS:
        raise InvalidRequest("reasoning.effort", f"must be one of {', '.join(_EFFORTS)}")
    out["reasoning_effort"] = effort
