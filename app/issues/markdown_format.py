"""Issues written in Markdown, both ways: a Markdown file to an `IssueIn`, an issue to Markdown.

The grammar (also in docs/markdown-issues.md):

    ---
    subject: The Specialization Wave          (required)
    preheader: Small models, big gains
    slug: 2026-03-03-the-specialization-wave
    date: Tuesday, 3 March 2026               (a masthead block showing this date comes first)
    ---
    ## Title {type}

* Every line that starts with `## ` begins a block; `{type}` at the end of the heading names its
  type (`masthead`, `lead`, `article`, `stats`, `cards`, `links`, `opinion`, `trending`, `movers`,
  `subscribe`, `markdown`). A heading without `{type}` is an `article`. `masthead` and
  `markdown` blocks have no title: `## {markdown}`.
* Field lines right under the heading (no blank line in between): `Kicker:` and `Summary:`
  (lead), `Kicker:` (article), `Date:` (masthead), `Intro:` (cards, links, trending, movers).
  A value in double quotes is read as a JSON string, for values with line breaks.
* The rest is the block's text: the body (lead, article, subscribe, markdown), a list (stats),
  an intro paragraph and a list (cards, links, movers), or `### ` sub-headings:
  one per piece of an opinion block (its body below it), one per group of a trending block
  (`### Source — Label`, the group's list below it).
* List items (`- `, `* ` or `+ `):
    stats     `- **1.5B** parameters in OpenMath-Nemotron`
    cards     `- [Title](https://…) — description` or `- **Title** — description`
    links     `- [Title](https://…)`, optionally followed by ` — description`
    trending  `- [Title](https://…) (metric) — description`, metric and description optional
    movers    `- [Name](https://…) (+312%) — note`, the change in parentheses is required
  `**Title**` may replace `[Title](url)` everywhere; lines indented under an item continue its
  description; an item may also be written as a JSON object: `- {"title": "…", "url": "…"}`.
* An image block: `## Caption {image}` (or `## {image}` without a caption), an optional
  `Link: https://…` line, then the image as `![Alt text](https://…/media/….jpg)`. `Alt:` and
  `Url:` field lines may replace the `![…](…)` line (the writer uses them when the alt text
  holds brackets).
* A body line that starts with `##` would start a block: indent it by one space. One leading
  space is removed from every text line that starts with spaces and `##`.

`issue_to_markdown` writes exactly this grammar; `parse_issue_markdown(issue_to_markdown(x))`
gives the same blocks as `x` (each block is checked as it is written, and written in the plainer
quoted form when its readable form would not read back the same).
"""

from __future__ import annotations

from app.issues.markdown_read import parse_issue_markdown
from app.issues.markdown_write import issue_to_markdown, to_markdown

__all__ = ("issue_to_markdown", "parse_issue_markdown", "to_markdown")
