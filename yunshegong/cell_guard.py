"""Spreadsheet formula injection: text that a spreadsheet would run as a formula is made inert.

A cell starting with = + - @ (or their full-width forms, which some spreadsheets fold to ASCII) or with a
tab or carriage return is read by Excel, LibreOffice and Sheets as a formula, e.g. a requester name
`=HYPERLINK("http://x","y")` becomes a link in a coordinator's sheet. OWASP's advice: prefix a single quote,
which spreadsheets show as nothing and read as "this is text". Only text columns go through here; numbers and
dates are written typed (a negative number stays a number).
"""

from __future__ import annotations

# ASCII triggers, the tab and carriage return, and the full-width ＝ ＋ － ＠.
TRIGGERS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")


def neutralise(text: str) -> str:
    """`text` with a leading `'` if a spreadsheet would otherwise treat it as a formula."""
    return "'" + text if text and text[0] in TRIGGERS else text
