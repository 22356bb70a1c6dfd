"""Per-field deltas from a completion as it streams in (DSPy's streaming-listener idea).

A field stream is fed text chunks as the LM produces them and returns ``(field, text, last)``
triples for the signature's output fields: :class:`ChatFieldStream` follows the ChatAdapter's
``[[ ## field ## ]]`` headers, :class:`JSONFieldStream` the keys of the JSONAdapter's object. The
deltas of a field concatenate to its text with surrounding whitespace removed; the typed value comes
from the adapter's parse of the whole completion, as without streaming.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

Delta = tuple[str, str, bool]

_HEADER = re.compile(r"\[\[ ## (\w+) ## \]\]")


class ChatFieldStream:
    def __init__(self, outputs: Iterable[str]) -> None:
        self._outputs = set(outputs)
        self._buffer = ""
        self._field: str | None = None
        self._raw = ""
        self._sent = 0

    def feed(self, text: str) -> list[Delta]:
        self._buffer += text
        out: list[Delta] = []
        while True:
            match = _HEADER.search(self._buffer)
            if match is None:
                break
            self._raw += self._buffer[: match.start()]
            self._close(out)
            name = match.group(1)
            self._field = name if name in self._outputs else None
            self._buffer = self._buffer[match.end():]
        keep = self._partial_header_start(self._buffer)
        self._raw += self._buffer[:keep]
        self._buffer = self._buffer[keep:]
        self._flush(out, last=False)
        return out

    def close(self) -> list[Delta]:
        out: list[Delta] = []
        self._raw += self._buffer
        self._buffer = ""
        self._close(out)
        return out

    @staticmethod
    def _partial_header_start(text: str) -> int:
        """Where a header that is not complete yet may start (len(text) when none may)."""

        start = text.rfind("[")
        while start > 0 and text[start - 1] == "[":
            start -= 1
        if start < 0 or "]]" in text[start:] or len(text) - start > 80:
            return len(text)
        return start

    def _flush(self, out: list[Delta], *, last: bool) -> None:
        if self._field is None:
            return
        text = self._raw.strip() if last else self._raw.lstrip().rstrip()
        new = text[self._sent:]
        if new or last:
            out.append((self._field, new, last))
        self._sent = len(text)

    def _close(self, out: list[Delta]) -> None:
        self._flush(out, last=True)
        self._field, self._raw, self._sent = None, "", 0


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class JSONFieldStream:
    """Scans the top-level object incrementally; string values stream, other values arrive whole."""

    def __init__(self, outputs: Iterable[str]) -> None:
        self._outputs = set(outputs)
        self._buffer = ""
        self._state = "start"
        self._key = ""
        self._value = ""  # raw text of a non-string value
        self._depth = 0
        self._in_string = False
        self._escaped = False

    def feed(self, text: str) -> list[Delta]:
        self._buffer += text
        out: list[Delta] = []
        pending = ""
        i = 0
        buf = self._buffer
        while i < len(buf):
            ch = buf[i]
            state = self._state
            if state == "start":
                if ch == "{":
                    self._state = "key_or_end"
            elif state == "key_or_end":
                if ch == '"':
                    self._state, self._key = "key", ""
                elif ch == "}":
                    self._state = "done"
            elif state == "key":
                if ch == "\\":
                    if i + 1 >= len(buf):
                        break
                    self._key += _ESCAPES.get(buf[i + 1], buf[i + 1])
                    i += 1
                elif ch == '"':
                    self._state = "colon"
                else:
                    self._key += ch
            elif state == "colon":
                if ch == ":":
                    self._state = "value"
            elif state == "value":
                if ch == '"':
                    self._state = "string"
                elif not ch.isspace():
                    self._state, self._value, self._depth, self._in_string = "other", "", 0, False
                    continue  # re-read this character in the "other" state
            elif state == "string":
                if ch == "\\":
                    decoded, used = self._escape(buf, i)
                    if used == 0:
                        break  # the escape is not complete yet
                    pending += decoded
                    i += used
                    continue
                if ch == '"':
                    self._emit(out, pending, last=True)
                    pending = ""
                    self._state = "key_or_end"
                else:
                    pending += ch
            elif state == "other":
                if self._end_of_other(ch):
                    if self._key in self._outputs:
                        out.append((self._key, self._value.strip(), True))
                    self._state = "done" if ch == "}" else "key_or_end"
                else:
                    self._value += ch
            i += 1
        self._buffer = buf[i:]
        if pending:
            self._emit(out, pending, last=False)
        return out

    def close(self) -> list[Delta]:
        if self._state == "string" and self._key in self._outputs:
            return [(self._key, "", True)]
        if self._state == "other" and self._key in self._outputs and self._value.strip():
            return [(self._key, self._value.strip(), True)]
        return []

    def _emit(self, out: list[Delta], text: str, *, last: bool) -> None:
        if self._key in self._outputs and (text or last):
            out.append((self._key, text, last))

    def _end_of_other(self, ch: str) -> bool:
        if self._in_string:
            if self._escaped:
                self._escaped = False
            elif ch == "\\":
                self._escaped = True
            elif ch == '"':
                self._in_string = False
            return False
        if ch == '"':
            self._in_string = True
        elif ch in "[{":
            self._depth += 1
        elif ch in "]}":
            if self._depth == 0:
                return ch == "}"
            self._depth -= 1
        elif ch == "," and self._depth == 0:
            return True
        return False

    @staticmethod
    def _escape(buf: str, i: int) -> tuple[str, int]:
        """The decoded escape at ``buf[i]`` and how many characters it spans (0: incomplete)."""

        if i + 1 >= len(buf):
            return "", 0
        kind = buf[i + 1]
        if kind != "u":
            return _ESCAPES.get(kind, kind), 2
        if i + 6 > len(buf):
            return "", 0
        try:
            return chr(int(buf[i + 2: i + 6], 16)), 6
        except ValueError:
            return buf[i: i + 6], 6


def field_stream(adapter: str, outputs: Iterable[str]) -> ChatFieldStream | JSONFieldStream | None:
    """The field stream for an adapter, or None when it does not stream fields (XML, two-step)."""

    if adapter == "chat":
        return ChatFieldStream(outputs)
    if adapter == "json":
        return JSONFieldStream(outputs)
    return None
