"""The lessons' mathematics renders on GitHub.

GitHub renders ``$...$`` inline and ```` ```math ```` fenced blocks with MathJax, but its
Markdown parser runs first and is easily confused. What goes wrong, and what this lint rejects:

- ``$$ ... $$`` display math: rendered only in some places and broken by blank lines or
  Markdown characters inside; a ```` ```math ```` fence is always taken verbatim.
- inline math broken over two lines: the line break can end the math or be taken apart by the
  Markdown parser; keep every ``$...$`` on one line.
- ``\\{``, ``\\}`` or ``\\\\`` inside ``$...$``: Markdown treats a backslash before punctuation
  as an escape and eats it, so ``\\{`` reaches MathJax as ``{`` (an invisible group) and
  ``\\\\`` as ``\\``.
- a space after the opening or before the closing ``$``: GitHub then does not see math at all
  and prints the dollar signs.

Dollar signs inside code (fenced blocks, indented blocks, ``inline code``) are not math and are
skipped. A literal dollar sign in prose is written ``\\$``.
"""
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.tutorials

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
DOCUMENTS = sorted(TUTORIALS.glob("*.md"))

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def _blank_code_spans(text):
    """``text`` with every inline code span replaced by spaces (newlines kept), so that the
    positions of everything else are unchanged."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):            # an escaped character
            out.append(text[i:i + 2])
            i += 2
            continue
        if text[i] != "`":
            out.append(text[i])
            i += 1
            continue
        run = len(text[i:]) - len(text[i:].lstrip("`"))
        ticks = "`" * run
        close = i + run
        while True:                                          # the next run of exactly `run` ticks
            close = text.find(ticks, close)
            if close < 0 or not text[close + run:close + run + 1] == "`":
                break
            close += len(text[close:]) - len(text[close:].lstrip("`"))
        if close < 0:                                        # unmatched: literal backticks
            out.append(ticks)
            i += run
            continue
        span = text[i:close + run]
        out.append(re.sub(r"[^\n]", " ", span))
        i = close + run
    return "".join(out)


def _paragraphs(lines):
    """(first line number, text) of each run of prose lines; code and math fences and indented
    code blocks are left out. Also yields ('fence', line number, info) for math fences."""
    paragraph, start = [], None
    fence, previous_blank, in_indented = None, True, False
    for number, line in enumerate(lines, 1):
        if fence is not None:
            if re.match(r"^ {0,3}" + re.escape(fence[0]) + r"[`~]*\s*$", line):
                fence = None
            elif fence[1] == "math" and "$" in line:
                yield ("math-fence-dollar", number, line)
            continue
        match = FENCE.match(line)
        if match:
            if paragraph:
                yield ("prose", start, "\n".join(paragraph))
                paragraph = []
            fence = (match.group(1), match.group(2).strip().split(" ")[0].lower())
            previous_blank = False
            continue
        blank = not line.strip()
        indented = line.startswith("    ") or line.startswith("\t")
        if indented and (previous_blank or in_indented) and not paragraph:
            in_indented = True                               # an indented code block
            previous_blank = False
            continue
        in_indented = in_indented and blank
        if blank:
            if paragraph:
                yield ("prose", start, "\n".join(paragraph))
                paragraph = []
            previous_blank = True
            continue
        if not paragraph:
            start = number
        paragraph.append(line)
        previous_blank = False
    if paragraph:
        yield ("prose", start, "\n".join(paragraph))


def lint_math(text):
    """[(line number, message)] for every construct that GitHub renders badly."""
    problems = []
    for kind, first, body in _paragraphs(text.splitlines()):
        if kind == "math-fence-dollar":
            problems.append((first, "a $ inside a ```math fence (the fence is already math)"))
            continue
        prose = _blank_code_spans(body)
        line_of = lambda pos: first + prose.count("\n", 0, pos)
        dollars = [m.start() for m in re.finditer(r"(?<!\\)\$", prose)]
        k = 0
        while k < len(dollars):
            pos = dollars[k]
            if k + 1 < len(dollars) and dollars[k + 1] == pos + 1:
                problems.append((line_of(pos), "$$ display math: use a ```math fence instead"))
                # skip to the closing $$, if any
                rest = [d for d in dollars[k + 2:] if d + 1 in dollars]
                if rest:
                    k = dollars.index(rest[0]) + 2
                else:
                    k += 2
                continue
            if k + 1 >= len(dollars):
                problems.append((line_of(pos), "a $ that opens math which never closes "
                                               "(a literal dollar is written \\$)"))
                break
            end = dollars[k + 1]
            math = prose[pos + 1:end]
            where = line_of(pos)
            snippet = (math if len(math) < 60 else math[:57] + "...").replace("\n", " ")
            if "\n" in math:
                problems.append((where, f"inline math ${snippet}$ runs over several lines: "
                                        "keep it on one line"))
            if math[:1].isspace():
                problems.append((where, f"a space after the opening $ of ${snippet}$"))
            if math[-1:].isspace():
                problems.append((where, f"a space before the closing $ of ${snippet}$"))
            if "\\{" in math or "\\}" in math:
                problems.append((where, f"\\{{ or \\}} inside ${snippet}$: Markdown eats the "
                                        "backslash; use \\lbrace/\\rbrace or a ```math fence"))
            if "\\\\" in math:
                problems.append((where, f"\\\\ inside ${snippet}$: Markdown turns it into one "
                                        "backslash; use a ```math fence"))
            k += 2
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=[p.stem for p in DOCUMENTS])
def test_math_renders_on_github(document):
    problems = lint_math(document.read_text(encoding="utf-8"))
    assert not problems, "\n".join(f"tutorials/{document.name}:{line}: {message}"
                                   for line, message in problems)


def test_every_document_is_linted():
    names = {p.name for p in DOCUMENTS}
    assert "README.md" in names and len(names) == 12, sorted(names)    # 11 lessons and the index


# ---- the lint itself catches each construct ---------------------------------------------------

def _messages(text):
    return [message for _, message in lint_math(text)]


def test_lint_accepts_good_math():
    good = ("Inline $a_i = b$ and $x \\in \\lbrace 0, 1 \\rbrace$ on one line.\n\n"
            "```math\n\\{ x \\} \\\\ y\n```\n\n"
            "Two spans $a$ and $b$, a literal \\$5, and `code with $ signs` and\n"
            "```python\nprint('$$ $ x$')\n```\n\n"
            "    indented code $ is not math\n\n"
            "A span of ``code ` with $`` backticks and $x$ after it.\n")
    assert lint_math(good) == []


def test_lint_catches_double_dollar_display_math():
    problems = lint_math("Before.\n\n$$\nx = 1\n$$\n\nAfter.\n")
    assert [line for line, _ in problems] == [3]
    assert "```math" in problems[0][1]


def test_lint_catches_inline_math_over_two_lines():
    problems = lint_math("Some text $a +\nb$ more text.\n")
    assert problems and problems[0][0] == 1 and "one line" in problems[0][1]


def test_lint_catches_escaped_braces_and_double_backslash():
    assert any("\\{" in m for m in _messages("Set $\\{0, 1\\}$.\n"))
    assert any("\\\\" in m for m in _messages("Cases $a \\\\ b$.\n"))


def test_lint_catches_spaces_inside_the_dollars():
    assert any("before the closing" in m for m in _messages("Then $\\infty = $ nan.\n"))
    assert any("after the opening" in m for m in _messages("Then $ x$ is.\n"))


def test_lint_catches_an_unclosed_dollar_and_dollars_in_math_fences():
    assert any("never closes" in m for m in _messages("It costs $5 only.\n"))
    assert any("```math" in m for m in _messages("```math\n$x$\n```\n"))


def test_lint_skips_code_spans_across_lines_and_names_the_line():
    text = "Line one.\nA span `np.add.at(dx, $,\ny)` and then $a\nb$.\n"
    problems = lint_math(text)
    assert [line for line, _ in problems] == [3]
