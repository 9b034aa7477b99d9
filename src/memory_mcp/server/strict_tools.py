"""Tool registration with a strict argument contract: JSON types as declared (no `"yes"` for a boolean, no
`"3"` for a number), unknown arguments refused, and every argument error an `InvalidInput` naming the field
and the fix, never pydantic's own text.

The one leniency kept from the SDK: a list argument sent as a JSON-encoded string (some clients can send
nothing else) is still decoded; a scalar never is.

Results are ours: typed dicts built by `views`, which tests check against the published output schemas with
an independent validator. So a result is not validated and re-dumped by pydantic on every call, and its text
block (for clients that read no structured content) is the same JSON, compact rather than indented.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic_core
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import CallToolResult, TextContent
from pydantic import ConfigDict, ValidationError

_EXPECTED = {
    "bool_type": "must be true or false (a JSON boolean, not a string)",
    "int_type": "must be a whole number (a JSON number, not a string)",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number (a JSON number, not a string)",
    "string_type": "must be a string",
    "list_type": "must be a list, e.g. [\"a\", \"b\"]",
    "missing": "is required",
}


class _StrictMetadata(FuncMetadata):
    def pre_parse_json(self, data: dict[str, Any]) -> dict[str, Any]:
        parsed = super().pre_parse_json(data)
        return {
            key: value if isinstance(value, list) or not isinstance(data[key], str) else data[key]
            for key, value in parsed.items()
        }


class StrictTool(Tool):
    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        try:
            result = await super().run(arguments, context, convert_result=False)
        except ToolError as exc:
            if type(exc) is ToolError and isinstance(exc.__cause__, ValidationError):
                problems = "; ".join(_describe(error) for error in exc.__cause__.errors())
                raise ToolError(f"Error executing tool {self.name}: InvalidInput: {problems}") from None
            raise
        return tool_result(result) if convert_result else result


def tool_result(structured: dict[str, Any]) -> CallToolResult:
    """A tool's typed dict as MCP's result: the structured content, and the same JSON as its text."""
    text = pydantic_core.to_json(structured).decode()
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def strict_tool(fn: Callable[..., Any], **options: Any) -> StrictTool:
    """A tool for `fn` (as `MCPServer.add_tool` would build it) whose arguments are checked strictly."""
    tool = StrictTool.from_function(fn, **options)
    loose = tool.fn_metadata

    class Arguments(loose.arg_model):  # type: ignore[misc, valid-type]
        model_config = ConfigDict(strict=True, extra="forbid", arbitrary_types_allowed=True)

    Arguments.__name__ = loose.arg_model.__name__
    tool.fn_metadata = _StrictMetadata(
        arg_model=Arguments,
        output_schema=loose.output_schema,
        output_model=loose.output_model,
        wrap_output=loose.wrap_output,
    )
    tool.parameters = Arguments.model_json_schema(by_alias=True)
    return tool


def _describe(error: Any) -> str:
    """One pydantic error as `field problem; fix`."""
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
    kind, context = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"unknown argument {field!r}; remove it (the tool's schema lists the arguments it takes)"
    if kind in ("string_too_long", "too_long"):
        unit = "characters" if kind == "string_too_long" else "items"
        return f"{field} is too long: at most {context.get('max_length')} {unit}; shorten it"
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = context.get("ge", context.get("le"))
        word = "at least" if kind == "greater_than_equal" else "at most"
        return f"{field} must be {word} {bound}"
    return f"{field} {_EXPECTED.get(kind, 'is not valid: ' + str(error.get('msg', kind)).lower())}"

