"""``serve --ui``'s compare page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by ``.ci/run``; nothing downloaded at run time) driven by Selenium against the
live node. What the page shows is checked against the API's own ``/search`` answers.

Screenshots and the page's measurements are written to ``$BRIDGE_TEST_ARTIFACTS`` (default
``test-artifacts/``)."""
import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from bridge import indexing, mapping
from bridge.evaluation import load_beir
from bridge.stamp import IndexStamp
from tests.conftest import REPO, SAMPLE, cli, load_jsonl, unavailable
from tests.serving import running_service

pytestmark = [pytest.mark.integration, pytest.mark.model]

INDEX = "test-compare-page"
TOKEN = "c0mpare-page-t0ken"
ARTIFACTS = Path(os.environ.get("BRIDGE_TEST_ARTIFACTS", REPO / "test-artifacts"))


@pytest.fixture(scope="module")
def index(client, encoder):
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    body = mapping.build(mapping.IndexConfig(), encoder.stamp)
    client.indices.create(index=INDEX, body=body)
    indexing.run(client, encoder, INDEX, iter(load_jsonl(SAMPLE)),
                 IndexStamp.from_meta(body["mappings"]["_meta"][mapping.META_KEY]))
    client.indices.refresh(index=INDEX)
    yield INDEX
    client.indices.delete(index=INDEX, ignore_unavailable=True)


@pytest.fixture(scope="module")
def query(scifact_dir) -> str:
    """A SciFact query judged against a document of the sample the index holds."""
    sample = {d["_id"] for d in load_jsonl(SAMPLE)}
    judged = {}
    with open(scifact_dir / "qrels" / "test.tsv", encoding="utf-8") as f:
        for line in list(f)[1:]:
            qid, did, _ = line.rstrip("\n").split("\t")
            if did in sample:
                judged.setdefault(qid, did)
    queries = {q["_id"]: q["text"] for q in load_jsonl(scifact_dir / "queries.jsonl")}
    return next(queries[q] for q in sorted(judged, key=int) if q in queries)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        unavailable("no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1000"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "profile.default_content_setting_values.automatic_downloads": 1})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.downloads = downloads
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def service(node_url, index):
    with running_service("--url", node_url, "serve", "--index", index, "--ui") as (base, _):
        yield base


def wait(driver, condition, what: str, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(lambda d: condition(d))
    except Exception:
        driver.save_screenshot(str(ARTIFACTS / "compare-timeout.png"))
        pytest.fail(f"timed out waiting for {what}")


def finished(driver) -> bool:
    """A run has rendered: its status line, or an error."""
    return "columns in" in driver.find_element("id", "status").text or driver.find_element("id", "error").is_displayed()


def shown(driver) -> dict[str, list[str]]:
    """Each column's mode -> its hits' document ids, in the page's order."""
    return {c.get_attribute("data-mode"): [h.get_attribute("data-id") for h in c.find_elements("css selector", "li.hit")]
            for c in driver.find_elements("css selector", "section.column")}


def api_hits(base: str, text: str, mode: str, headers=None) -> list[dict]:
    r = httpx.post(base + "/search", json={"text": text, "index": INDEX, "mode": mode, "size": 10},
                   headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["hits"]


def expected_change(doc_id: str, rank: int, baseline: list[str]) -> str:
    if doc_id not in baseline:
        return "new"
    before = baseline.index(doc_id) + 1
    return "up" if before > rank else "down" if before < rank else "same"


def words(text: str) -> list[str]:
    import re
    import unicodedata

    plain = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)).lower()
    return re.findall(r"\w+", plain)


def test_the_page_shows_the_apis_answers_side_by_side(browser, service, query):
    from selenium.webdriver.common.keys import Keys

    started = time.perf_counter()
    browser.get(service + "/ui")
    box = wait(browser, lambda d: d.find_element("id", "q"), "the query box")
    assert browser.find_element("id", "index").get_attribute("value") == INDEX  # the served index, preselected
    box.send_keys(query, Keys.ENTER)  # typed and submitted from the keyboard
    wait(browser, finished, "the three columns")
    assert not browser.find_element("id", "error").is_displayed(), browser.find_element("id", "error").text
    columns = shown(browser)
    assert list(columns) == ["bm25", "splade", "hybrid"]
    assert [h.text for h in browser.find_elements("css selector", "section.column h2")] == ["BM25", "SPLADE", "hybrid"]
    answers = {mode: api_hits(service, query, mode) for mode in columns}
    for mode, ids in columns.items():
        assert ids == [h["_id"] for h in answers[mode]], mode
    assert columns["splade"] != columns["bm25"]  # a query where the columns differ

    # rank changes against the first column (BM25), and BM25's hits the others lost
    baseline, moved = columns["bm25"], set()
    for mode in ("splade", "hybrid"):
        column = browser.find_element("css selector", f"section.column[data-mode='{mode}']")
        marks = [h.find_element("css selector", ".change").get_attribute("data-change")
                 for h in column.find_elements("css selector", "li.hit")]
        assert marks == [expected_change(d, r, baseline) for r, d in enumerate(columns[mode], 1)], mode
        gone = [c.get_attribute("data-id") for c in column.find_elements("css selector", ".gone code")]
        assert gone == [d for d in baseline if d not in columns[mode]]
        moved |= set(marks) - {"same"}
    assert moved  # the columns differ, and the page says how
    assert not browser.find_elements("css selector", "section.column[data-mode='bm25'] .change")

    # the expansion: the query's tokens as chips, those not in its text marked, one highlighted in a hit
    explained = httpx.post(service + "/search", json={"text": query, "index": INDEX, "explain": True}).json()
    chips = {c.get_attribute("data-term"): "expansion" in c.get_attribute("class")
             for c in browser.find_elements("css selector", "#chips .chip")}
    assert set(chips) == set(explained["tokens"])
    query_words = words(query)
    for term, expansion in chips.items():
        in_text = any(w.startswith(term) if not term.startswith("##") else term[2:] in w[1:] for w in query_words)
        assert expansion == (not in_text), term
    highlighted = {m.get_attribute("data-term") for m in browser.find_elements("css selector", "li.hit mark[data-term]")}
    assert {t for t, expansion in chips.items() if expansion} & highlighted, "no expansion term highlighted in a hit"
    for mark in browser.find_elements("css selector", "li.hit mark[data-term]")[:50]:  # whole words, by their start
        assert words(mark.text) and words(mark.text)[0].startswith(mark.get_attribute("data-term")), mark.text

    # each SPLADE hit's top terms with their share of its SPLADE score, as the API explains it
    first = browser.find_element("css selector", "section.column[data-mode='splade'] li.hit")
    api_first = httpx.post(service + "/search", json={"text": query, "index": INDEX, "explain": True,
                                                      "explain_top": 64, "size": 1}).json()["hits"][0]
    want = [(e["token"], round(100 * e["contribution"] / api_first["splade_score"])) for e in api_first["explain"][:5]]
    got = [(li.get_attribute("data-term"), int(li.get_attribute("data-share")))
           for li in first.find_elements("css selector", ".terms li")]
    assert got == want
    fields = [f.get_attribute("data-field") for f in first.find_elements("css selector", "[data-field]")]
    assert fields == explained["text_fields"] == ["title", "text"]  # the text the model read, nothing else
    first.find_element("css selector", "details summary").click()  # the whole _source on demand
    source = json.loads(first.find_element("css selector", "details pre").text)
    assert source == {k: v for k, v in api_first["_source"].items()}

    # the address holds the comparison: opening it runs it again
    address = browser.current_url
    assert "q=" in address and f"index={INDEX}" in address and "modes=bm25%2Csplade%2Chybrid" in address
    browser.save_screenshot(str(ARTIFACTS / "compare.png"))
    took = int(browser.find_element("tag name", "body").get_attribute("data-last-run-ms"))
    weight = sum(len(httpx.get(service + p).content) for p in ("/ui", "/ui/compare.js", "/ui/compare.css"))
    (ARTIFACTS / "compare.json").write_text(json.dumps({"page_bytes": weight, "first_result_ms": took,
                                                        "test_seconds": round(time.perf_counter() - started, 1)}))
    browser.get("about:blank")
    browser.get(address)
    wait(browser, finished, "the shared comparison")
    assert shown(browser) == columns


def test_a_refused_index_shows_a_readable_error(browser, service):
    browser.get(service + "/ui?q=vitamin+D&index=not-served-here&modes=splade,hybrid")
    wait(browser, finished, "the error")
    error = browser.find_element("id", "error")
    assert error.is_displayed()
    assert error.text.startswith("error: index 'not-served-here' is not served here") and "HTTP 403" in error.text
    assert "\n" not in error.text
    assert [c.get_attribute("data-mode") for c in browser.find_elements("css selector", "section.column")] == \
        ["splade", "hybrid"]
    assert not browser.find_elements("css selector", "li.hit")
    browser.save_screenshot(str(ARTIFACTS / "compare-refused.png"))


def test_judgments_download_as_a_collection_eval_reads(browser, service, query, tmp_path):
    from selenium.webdriver.common.keys import Keys

    browser.get(service + "/ui?" + str(httpx.QueryParams({"q": query, "index": INDEX, "modes": "bm25,splade"})))
    wait(browser, finished, "the columns")
    hits = browser.find_elements("css selector", "section.column[data-mode='splade'] li.hit")
    relevant, other = hits[0].get_attribute("data-id"), hits[1].get_attribute("data-id")
    hits[0].find_element("css selector", "button[data-mark='1']").send_keys(Keys.SPACE)  # by keyboard
    hits[1].find_element("css selector", "button[data-mark='0']").click()
    pressed = browser.find_elements("css selector", f"li.hit[data-id='{relevant}'] button[data-mark='1']")
    assert {b.get_attribute("aria-pressed") for b in pressed} == {"true"}  # in every column it is shown in
    for old in browser.downloads.glob("*"):
        old.unlink()
    browser.find_element("id", "download-qrels").click()
    browser.find_element("id", "download-queries").click()
    paths = [browser.downloads / "test.tsv", browser.downloads / "queries.jsonl"]  # renamed from .crdownload when done
    files = wait(browser, lambda _: paths if all(p.exists() for p in paths) else None, "the two downloads", 20)
    folder = tmp_path / "judged"
    (folder / "qrels").mkdir(parents=True)
    shutil.copy(files[0], folder / "qrels" / "test.tsv")
    shutil.copy(files[1], folder / "queries.jsonl")
    collection = load_beir(folder)
    assert collection.queries == {"q1": query}
    assert collection.qrels == {"q1": {relevant: 1, other: 0}}
    out = cli("eval", "--dataset", str(folder), "--index", INDEX, "--modes", "splade", "--metrics", "RR@10",
              "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["results"]["splade"]["RR@10"] == 1.0  # the relevant one is SPLADE's first hit


def test_the_page_works_with_a_token_it_never_stores(browser, node_url, index, query, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    with running_service("--url", node_url, "serve", "--index", index, "--ui", "--auth-token-file",
                         str(tokens)) as (base, _):
        browser.get(base + "/ui?" + str(httpx.QueryParams({"q": query, "index": INDEX})))
        field = wait(browser, lambda d: d.find_element("id", "token") if d.find_element("id", "token").is_displayed()
                     else None, "the token prompt")
        field.send_keys(TOKEN + "\n")
        wait(browser, finished, "the columns, with the token")
        assert not browser.find_element("id", "error").is_displayed()
        want = {m: [h["_id"] for h in api_hits(base, query, m, {"authorization": f"Bearer {TOKEN}"})]
                for m in ("bm25", "splade", "hybrid")}
        assert shown(browser) == want
        stored = browser.execute_script("return [localStorage.length, sessionStorage.length, document.cookie]")
        assert stored == [0, 0, ""] and TOKEN not in browser.current_url
