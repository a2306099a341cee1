"""Read the status page's one ``<style>`` block: rules, custom properties, WCAG contrast."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.status.dom import Node

_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_MEDIA = re.compile(r"@media([^{]+)\{((?:[^{}]*\{[^{}]*\})*)\s*\}")


@dataclass(frozen=True)
class Rule:
    media: str | None  # ``(max-width: 560px)`` inside an @media block, else None
    selector: str
    declarations: dict[str, str]


def _rules(text: str, media: str | None) -> list[Rule]:
    found = []
    for selectors, body in _RULE.findall(text):
        declarations = {}
        for declaration in body.split(";"):
            if ":" in declaration:
                name, value = declaration.split(":", 1)
                declarations[name.strip()] = " ".join(value.split())
        for selector in selectors.split(","):
            found.append(Rule(media, " ".join(selector.split()), declarations))
    return found


def stylesheet(page: Node) -> list[Rule]:
    """Every rule of the page's ``<style>``; a selector list gives one rule per selector."""
    (style,) = page.find_all("style")
    text = re.sub(
        r"/\*.*?\*/", "", "".join(c for c in style.children if isinstance(c, str)), flags=re.S
    )
    rules: list[Rule] = []
    for condition, body in _MEDIA.findall(text):
        rules += _rules(body, " ".join(condition.split()))
    rules += _rules(_MEDIA.sub("", text), None)
    return rules


def declared(rules: list[Rule], selector: str, prop: str, media: str | None = None) -> str:
    """The value of ``prop`` the last rule for exactly ``selector`` declares, vars resolved."""
    values = [
        r.declarations[prop]
        for r in rules
        if r.selector == selector and r.media == media and prop in r.declarations
    ]
    assert values, f"no {prop} for {selector!r}"
    return resolve(rules, values[-1])


def resolve(rules: list[Rule], value: str) -> str:
    custom = {k: v for r in rules if r.selector == ":root" for k, v in r.declarations.items()}
    while match := re.fullmatch(r"var\((--[\w-]+)\)", value):
        value = custom[match[1]]
    return value


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of ``#rgb`` or ``#rrggbb``."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    assert re.fullmatch(r"[0-9a-fA-F]{6}", digits), colour

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(digits[i : i + 2], 16)) for i in (0, 2, 4))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, two: str) -> float:
    """WCAG 2 contrast ratio, from 1 (same) to 21 (black on white)."""
    light, dark = sorted((luminance(one), luminance(two)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
