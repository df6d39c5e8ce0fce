"""How the review console turns a review form's strings into an edit (``api/console/
reviews.py``): each string goes to its own path, and the line breaks a browser changes in a
form are the draft's again. Pure, no stack."""

from __future__ import annotations

from api.console.reviews import as_drafted, edited_data
from localization.review_edit import chip_segments, edit_problems

SOURCE = {"a.b": "One", "a": {"b": "Two\nlines"}, "list": ["Three"]}
DRAFT = {"a.b": "Eins", "a": {"b": "Zwei\nZeilen"}, "list": ["Drei"]}


def test_a_form_sent_as_the_browser_shows_the_draft_is_no_edit() -> None:
    # A browser sends each line break of a textarea as CRLF.
    sent = {0: "Eins", 1: "Zwei\r\nZeilen", 2: "Drei"}
    assert edited_data(SOURCE, DRAFT, sent) is None


def test_each_string_goes_to_its_own_path_with_the_drafts_line_breaks() -> None:
    edited = edited_data(SOURCE, DRAFT, {0: "Eins!", 1: "Zwei\r\nZeilen\r\nmehr"})
    assert edited == {"a.b": "Eins!", "a": {"b": "Zwei\nZeilen\nmehr"}, "list": ["Drei"]}
    # A string past the source's last is no string of the document: ignored.
    assert edited_data(SOURCE, DRAFT, {7: "x"}) is None


def test_a_draft_with_crlf_keeps_crlf() -> None:
    assert as_drafted("a\r\nb", "a\r\nb") == "a\r\nb"
    assert as_drafted("a\r\nb\r\nc", "a\r\nb") == "a\r\nb\r\nc"
    assert as_drafted("a\nb", "a\rb") == "a\rb"  # the same lines: the draft's own


def test_only_the_sources_placeholders_are_chips_so_a_repeated_one_can_be_deleted() -> None:
    """A chip cannot be deleted in the editor, and the review refuses an edit that repeats
    a placeholder or drops one: so the chips are the source string's tokens, each as
    often as the source has it, and a token the draft repeated or made up is text."""
    source = "Hi {name}, open <b>Settings</b>!"
    draft = "Hallo {name} {name}, öffne <b>Einstellungen</b> {other}!"
    segments = chip_segments(draft, source)
    assert "".join(piece for piece, _ in segments) == draft
    assert [piece for piece, chip in segments if chip] == ["{name}", "<b>", "</b>"]
    fixed = "Hallo {name}, öffne <b>Einstellungen</b>!"  # the reviewer deletes the extra text
    assert edit_problems({"t": source}, {"t": fixed}) == {}
    assert edit_problems({"t": source}, {"t": draft})  # as the draft had it: refused
    # Without a source, every token is a chip.
    assert [p for p, chip in chip_segments(draft) if chip] == [
        "{name}",
        "{name}",
        "<b>",
        "</b>",
        "{other}",
    ]
