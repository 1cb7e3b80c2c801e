"""A mail's attachments are documents of their own: named after the mail (``inbox.eml ›
tender.pdf``), cited with their own pages, kept, re-read and removed with the mail. The mails
are made by the test with the standard library's ``email`` package (and aspose-email-foss for
Outlook ``.msg``), indexed with the bundled encoder and asked about."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

import qa
import qa.ingest.mail
from conftest import REPO
from format_files import make_eml, make_mail, make_msg, make_pdf, truncated
from qa.ingest.attachments import MAX_ATTACHMENTS, MAX_DEPTH, AttachedFiles, unpack
from qa.ingest.documents import parse

TENDER = make_pdf([
    "Los Lagos regional port authority. Record of the bids received in March 2026.",
    "The winning bid for the ferry terminal of Puerto Montt came from Astilleros del Sur, at 48 million dollars.",
])
PERMIT = make_pdf([
    "Port authority of Calbuco. Permits issued this year.",
    "The dredging permit for the Calbuco channel expires on 30 September 2027.",
])
MINUTES = b"The harbour pilots voted to strike on the fifteenth of June.\n"
ORDER = b"Two new gantry cranes for the port of San Antonio will be delivered by Liebherr in 2028.\n"
# made once: a MIME boundary is random, and a mail changed at every call would be indexed anew
FORWARDED = make_eml("Pilots union", "See the minutes attached.", {"minutes.txt": MINUTES})


def mail(subject: str, body: str) -> EmailMessage:
    return make_mail(subject, body, to="board@example.org")


def inbox(*extra: tuple[str, bytes]) -> bytes:
    """A mail whose body answers one question, with a PDF whose page 2 answers another, a
    program and a damaged PDF (both skipped), and a forwarded mail with a text attachment."""
    message = mail("Schedule change", "Hi all,\nthe board meeting moves to Thursday at nine, in the Humboldt room.\n")
    message.add_attachment(TENDER, maintype="application", subtype="pdf", filename="tender.pdf")
    message.add_attachment(b"MZ\x90\x00 a program", maintype="application", subtype="octet-stream", filename="setup.exe")
    message.add_attachment(truncated(PERMIT), maintype="application", subtype="pdf", filename="broken.pdf")
    message.add_attachment(message_from_bytes(FORWARDED, policy=policy.default))  # message/rfc822 without a file name: named after its subject
    for name, data in extra:
        message.add_attachment(data, maintype="text", subtype="plain", filename=name)
    return bytes(message)


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory):
    """(documents folder, index dir, build report) for a folder of two mails and a text file."""
    folder = tmp_path_factory.mktemp("attachments") / "docs"
    folder.mkdir()
    (folder / "inbox.eml").write_bytes(inbox())
    (folder / "memo.msg").write_bytes(make_msg("Dredging", "The permit is attached.", {"permit.pdf": PERMIT},
                                               forwarded=(("Crane order", "Forwarded.", {"order.txt": ORDER}),)))
    (folder / "notes.txt").write_text("The fish market of Angelmó opens at dawn.\n", encoding="utf-8")
    index_dir = folder.parent / "index"
    return folder, index_dir, qa.build_index(folder, index_dir, progress=False)


def ask_json(question: str, index_dir) -> dict:
    run = subprocess.run([sys.executable, "-m", "qa.cli", "ask", question, "--index-dir", str(index_dir), "--json"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def test_an_attached_pdf_is_cited_as_a_document_of_its_own_with_its_page(mailbox):
    _, index_dir, _ = mailbox
    answer = ask_json("Which company won the bid for the ferry terminal of Puerto Montt?", index_dir)
    assert not answer["abstained"], answer["text"]
    citation = answer["citations"][0]
    assert citation["source"] == "inbox.eml › tender.pdf"
    assert (citation["page"], citation["location"]) == (2, "page 2")
    assert "Astilleros del Sur" in citation["quote"]
    # the quote is the text extracted from the attached PDF itself (the bytes the test attached)
    assert parse(TENDER, "tender.pdf").text[citation["start"]:citation["end"]] == citation["quote"]


def test_the_mail_body_still_answers_and_bad_attachments_are_skipped_with_a_reason(mailbox):
    folder, index_dir, report = mailbox
    reasons = {s.source: s.reason for s in report.skipped}
    assert set(reasons) == {"inbox.eml › setup.exe", "inbox.eml › broken.pdf"}
    assert reasons["inbox.eml › setup.exe"].startswith("unsupported file type '.exe'")
    assert reasons["inbox.eml › broken.pdf"].startswith("malformed PDF")
    assert all("\n" not in reason for reason in reasons.values())
    citation = qa.load(index_dir).ask("When is the board meeting?").citations[0]
    assert citation.source == "inbox.eml" and "Thursday at nine" in citation.quote
    assert parse((folder / "inbox.eml").read_bytes(), "inbox.eml").text[citation.start:citation.end] == citation.quote
    assert citation.location is None  # a mail's own text has no pages


def test_a_forwarded_mail_and_its_attachment_are_documents_too(mailbox):
    _, index_dir, _ = mailbox
    answer = qa.load(index_dir).ask("When will the harbour pilots strike?")
    assert not answer.abstained, answer.text
    citation = answer.citations[0]
    assert citation.source == "inbox.eml › Pilots union.eml › minutes.txt"
    assert MINUTES.decode()[citation.start:citation.end] == citation.quote and "fifteenth of June" in citation.quote


def test_outlook_msg_attachments_are_documents_of_their_own(mailbox):
    _, index_dir, _ = mailbox
    answer = ask_json("When does the dredging permit for the Calbuco channel expire?", index_dir)
    assert not answer["abstained"], answer["text"]
    citation = answer["citations"][0]
    assert (citation["source"], citation["location"]) == ("memo.msg › permit.pdf", "page 2")
    assert parse(PERMIT, "permit.pdf").text[citation["start"]:citation["end"]] == citation["quote"]
    assert "30 September 2027" in citation["quote"]


def test_an_outlook_item_attached_to_an_outlook_message_has_its_attachments_read(mailbox):
    _, index_dir, _ = mailbox
    answer = qa.load(index_dir).ask("Who will deliver the gantry cranes for San Antonio?")
    assert not answer.abstained, answer.text
    citation = answer.citations[0]
    assert citation.source == "memo.msg › Crane order.msg › order.txt"
    assert ORDER.decode()[citation.start:citation.end] == citation.quote and "Liebherr" in citation.quote


def test_documents_list_attachments_under_their_mail(mailbox):
    _, index_dir, report = mailbox
    documents = {d.source: d.places for d in qa.load(index_dir).documents()}
    assert documents == {
        "inbox.eml": "", "inbox.eml › tender.pdf": "2 pages", "inbox.eml › Pilots union.eml": "",
        "inbox.eml › Pilots union.eml › minutes.txt": "", "memo.msg": "", "memo.msg › permit.pdf": "2 pages",
        "memo.msg › Crane order.msg": "", "memo.msg › Crane order.msg › order.txt": "", "notes.txt": "",
    }
    assert report.documents == len(documents)
    info = subprocess.run([sys.executable, "-m", "qa.cli", "info", "--index-dir", str(index_dir)], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout
    assert "  inbox.eml › tender.pdf  " in info


def test_an_unchanged_mail_is_not_read_again_and_a_changed_one_is(mailbox, tmp_path, monkeypatch):
    folder, index_dir, _ = mailbox
    docs, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(folder, docs)
    shutil.copytree(index_dir, index)
    reads = []
    read_eml = qa.ingest.mail.READERS[".eml"]
    monkeypatch.setitem(qa.ingest.mail.READERS, ".eml", lambda data: reads.append(len(data)) or read_eml(data))

    report = qa.build_index(docs, index, progress=False)
    assert (report.unchanged, report.chunks_embedded, reads) == (9, 0, [])

    (docs / "inbox.eml").write_bytes(inbox(("agenda.txt", b"Item one: the budget of the lighthouse museum.\n")))
    report = qa.build_index(docs, index, progress=False)
    assert reads  # the changed mail was read
    changes = {(c.source, c.status) for c in report.changes}
    assert changes == {("inbox.eml", "changed"), ("inbox.eml › agenda.txt", "added")}
    # the attachments already indexed (by content) were not embedded again: the body and the agenda were
    assert report.chunks_embedded == 2
    citation = qa.load(index).ask("Which company won the bid for the ferry terminal of Puerto Montt?").citations[0]
    assert (citation.source, citation.location) == ("inbox.eml › tender.pdf", "page 2")


def test_deleting_the_mail_removes_its_attachments(mailbox, tmp_path):
    folder, index_dir, _ = mailbox
    docs, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(folder, docs)
    shutil.copytree(index_dir, index)
    (docs / "inbox.eml").unlink()
    report = qa.build_index(docs, index, progress=False)
    removed = {c.source for c in report.changes if c.status == "removed"}
    assert removed == {"inbox.eml", "inbox.eml › tender.pdf", "inbox.eml › Pilots union.eml",
                       "inbox.eml › Pilots union.eml › minutes.txt"}
    assert sorted(d.source for d in qa.load(index).documents()) == [
        "memo.msg", "memo.msg › Crane order.msg", "memo.msg › Crane order.msg › order.txt", "memo.msg › permit.pdf",
        "notes.txt"]


def test_an_unreadable_mail_keeps_its_attachments_indexed(mailbox, tmp_path):
    folder, index_dir, _ = mailbox
    docs, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(folder, docs)
    shutil.copytree(index_dir, index)
    (docs / "inbox.eml").write_bytes(truncated(inbox()))
    report = qa.build_index(docs, index, progress=False)
    assert [(s.source, "kept the previously indexed version" in s.reason) for s in report.skipped] == [("inbox.eml", True)]
    assert "inbox.eml › tender.pdf" in {d.source for d in qa.load(index).documents()}


def test_a_mail_with_too_many_attachments_or_mails_nested_too_deep_is_cut_with_a_reason():
    many = mail("Many", "Lots of files.")
    for number in range(1, MAX_ATTACHMENTS + 6):
        many.add_attachment(f"File {number}.", subtype="plain", filename=f"file{number}.txt")
    unpacked = unpack(bytes(many), "many.eml", 10**6)
    assert len(unpacked.files) == MAX_ATTACHMENTS
    [skipped] = unpacked.skipped
    assert skipped.source == f"many.eml › file{MAX_ATTACHMENTS + 1}.txt"
    assert f"has {MAX_ATTACHMENTS + 5} attachments" in skipped.reason

    nested = make_eml("Level 0", "The deepest mail.", {"deep.txt": b"Deep down."})
    for level in range(1, MAX_DEPTH + 2):
        outer = mail(f"Level {level}", "Forwarding.")
        outer.add_attachment(message_from_bytes(nested, policy=policy.default))
        nested = bytes(outer)
    unpacked = unpack(nested, "top.eml", 10**6)
    assert len(unpacked.files) == MAX_DEPTH  # the mails of levels 3, 2, 1
    [skipped] = unpacked.skipped
    assert skipped.source == "top.eml › Level 3.eml › Level 2.eml › Level 1.eml › Level 0.eml"
    assert f"at most {MAX_DEPTH} mails deep" in skipped.reason


def test_an_attachment_larger_than_the_file_limit_is_skipped():
    message = mail("Large", "A large file.")
    message.add_attachment(b"x" * 5000, maintype="text", subtype="plain", filename="large.txt")
    unpacked = unpack(bytes(message), "large.eml", 4000)
    assert unpacked.files == ()
    assert [(s.source, s.reason) for s in unpacked.skipped] == [
        ("large.eml › large.txt", "file too large (5,000 bytes; limit 4,000)")]


def test_the_app_lists_attachments_and_misses_them_only_with_their_mail(mailbox, tmp_path):
    from qa.app import handlers

    folder, index_dir, _ = mailbox
    docs = tmp_path / "docs"
    shutil.copytree(folder, docs)
    library = handlers.Library(docs_dir=docs, index_dir=index_dir, index=qa.load(index_dir))
    rows = {row[0]: row[1] for row in handlers.documents_frame(library).values.tolist()}
    assert rows["inbox.eml › tender.pdf"] == "2 pages" and rows["memo.msg › permit.pdf"] == "2 pages"
    assert library.missing_documents() == []  # attachments are not files of the folder, yet not missing
    (docs / "inbox.eml").unlink()
    assert library.missing_documents() == ["inbox.eml", "inbox.eml › Pilots union.eml",
                                           "inbox.eml › Pilots union.eml › minutes.txt", "inbox.eml › tender.pdf"]


def test_a_build_finds_a_mails_attachments_in_turn_with_one_unpacking(monkeypatch):
    reads = []
    read_eml = qa.ingest.mail.READERS[".eml"]
    monkeypatch.setitem(qa.ingest.mail.READERS, ".eml", lambda data: reads.append(len(data)) or read_eml(data))
    message = mail("Three", "Three files.")
    texts = {f"file{number}.txt": f"File number {number}.".encode() for number in (1, 2, 3)}
    for name, text in texts.items():
        message.add_attachment(text, maintype="text", subtype="plain", filename=name)
    data, attached = bytes(message), AttachedFiles(10**6)
    assert [attached.find(data, "three.eml", f"three.eml › {name}") for name in texts] == list(texts.values())
    assert len(reads) == 1
    with pytest.raises(qa.errors.DocumentError, match="three.eml › gone.txt is no longer attached"):
        attached.find(data, "three.eml", "three.eml › gone.txt")
