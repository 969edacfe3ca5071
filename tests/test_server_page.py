"""The demo page of ``nlpseq serve`` in a real browser (headless Chromium
through Selenium): each panel shows what the REST API answers, the request
it sent and the curl command line that sends the same, and calls the
signature picked.

``NLPSEQ_SCREENSHOTS=FOLDER`` also writes the screenshots of the docs
(``serve_<app>.png``, ``serve_page.png``) into FOLDER;
``NLPSEQ_SERVE_URL=http://HOST:PORT`` tests a running server instead of the
``serving`` fixture's (see ``docs/images/serve_screenshots.sh``).
"""

import json
import os
import shlex
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_SECONDS = 60

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="the browser test needs selenium")
for _program in (CHROMIUM, CHROMEDRIVER):
    if not os.access(_program, os.X_OK):
        pytest.skip(f"the browser test needs {_program} (Debian's chromium "
                    "and chromium-driver packages)", allow_module_level=True)

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

NER_TEXT = "Zoë 😀 told reporters in New Harbor that Northwind Bank had grown."


def post(url, body):
    """The JSON answer of a POST (an error's answer too) and its status."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response), response.status
    except urllib.error.HTTPError as error:
        return json.load(error), error.code


@pytest.fixture(scope="module")
def server_url(request):
    url = os.environ.get("NLPSEQ_SERVE_URL")
    return url.rstrip("/") if url else request.getfixturevalue(
        "serving").rest_url.rstrip("/")


@pytest.fixture(scope="module")
def models(server_url):
    """The served models by name (``GET /nlpseq/v1/models``)."""
    with urllib.request.urlopen(f"{server_url}/nlpseq/v1/models",
                                timeout=60) as response:
        return {m["name"]: m for m in json.load(response)["models"]}


@pytest.fixture(scope="module")
def predict(server_url):
    """The first row of the REST API's answer for one text."""
    def predict(model, text, signature="serving_default"):
        answer, status = post(f"{server_url}/v1/models/{model}:predict",
                              {"signature_name": signature,
                               "instances": [text]})
        assert status == 200, answer
        return answer["predictions"][0]
    return predict


@pytest.fixture(scope="module")
def screenshots():
    folder = os.environ.get("NLPSEQ_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder) if folder else None


@pytest.fixture(scope="module")
def driver():
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--force-device-scale-factor=1", "--hide-scrollbars",
                     "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(
        options=options, service=Service(executable_path=CHROMEDRIVER))
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def page(driver, server_url, models):
    driver.get(f"{server_url}/")
    wait_for(driver, lambda d: d.find_element(By.ID, "models").get_attribute(
        "data-state") == "ready")
    assert console_errors(driver) == []
    return driver


def wait_for(driver, condition):
    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.1).until(
        condition)


def console_errors(driver):
    return [entry for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE"]


def panel(page, kind):
    sections = page.find_elements(By.CSS_SELECTOR,
                                  f"section.panel[data-kind='{kind}']")
    assert sections, f"no {kind} panel"
    return sections[0]


def text_of(element):
    """The element's text exactly (Selenium's ``.text`` normalizes
    whitespace)."""
    return element.get_property("textContent")


def set_text(page, textarea, text):
    """Puts text in a text box (also text that chromedriver cannot type,
    such as emoji)."""
    page.execute_script("arguments[0].value = arguments[1]", textarea, text)


def submit(page, section, text, keyboard=False):
    """Submits the panel's form with ``text`` (by the button, or by
    Ctrl+Enter); its result area."""
    textarea = section.find_element(By.TAG_NAME, "textarea")
    result = section.find_element(By.CSS_SELECTOR, ".result")
    page.execute_script("delete arguments[0].dataset.text", result)
    set_text(page, textarea, text)
    if keyboard:
        textarea.send_keys(Keys.CONTROL, Keys.ENTER)
    else:
        section.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    return result


def submit_and_wait(page, section, text, keyboard=False, signature=None):
    """Submits the panel's form with ``text`` and waits for its result for
    that text (given by ``signature``, when given)."""
    result = submit(page, section, text, keyboard)
    wait_for(page, lambda d: result.get_attribute("data-text") == text
             and result.get_attribute("data-state") in ("done", "error")
             and signature in (None, result.get_attribute("data-signature")))
    assert result.get_attribute("data-state") == "done", text_of(result)
    return result


def picker(section):
    """The panel's signature picker."""
    return Select(section.find_element(By.CSS_SELECTOR, "select.signature"))


def shown_request(section):
    """The request the panel shows: its JSON body and its curl line."""
    return (json.loads(text_of(section.find_element(
        By.CSS_SELECTOR, ".request-json"))), text_of(section.find_element(
            By.CSS_SELECTOR, ".request-curl")))


def spy_on_predict(page):
    """From now on, the bodies of the page's :predict requests, in
    ``window.predictBodies``; a function that returns them."""
    page.execute_script("""
        if (!window.predictBodies) {
            const fetch = window.fetch;
            window.fetch = (url, init) => {
                if (String(url).includes(":predict")) {
                    window.predictBodies.push(init && init.body);
                }
                return fetch(url, init);
            };
        }
        window.predictBodies = [];""")
    return lambda: page.execute_script("return window.predictBodies")


def screenshot(page, element, path):
    """A screenshot of the element, the window made as tall as the page
    (an element screenshot is cut at the window's edge)."""
    size = page.get_window_size()
    height = page.execute_script(
        "document.activeElement.blur();"
        "return document.documentElement.scrollHeight")
    page.set_window_size(size["width"], height + 200)
    try:
        element.screenshot(str(path))
    finally:
        page.set_window_size(size["width"], size["height"])


def panel_screenshot(page, section, models, screenshots):
    if screenshots:
        app = models[section.get_attribute("data-model")]["app"]
        screenshot(page, section, screenshots / f"serve_{app}.png")


def test_a_panel_per_model_chosen_by_its_app(page, models):
    kinds = {"sentiment": "classifier", "topic": "classifier", "ner": "ner",
             "next-word": "next-word", "translation": "translation"}
    shown = {s.get_attribute("data-model"): s.get_attribute("data-kind")
             for s in page.find_elements(By.CSS_SELECTOR, "section.panel")}
    assert shown == {name: kinds.get(m["app"], "generic")
                     for name, m in models.items()}
    assert set(shown.values()) >= {"classifier", "ner", "next-word",
                                   "translation"}
    for section in page.find_elements(By.CSS_SELECTOR, "section.panel"):
        textarea = section.find_element(By.TAG_NAME, "textarea")
        label = section.find_element(
            By.CSS_SELECTOR, f"label[for='{textarea.get_attribute('id')}']")
        assert label.text.strip()


def test_classifier_panel_shows_the_label_and_a_bar_per_class(
        page, predict, models, screenshots):
    section = panel(page, "classifier")
    model = section.get_attribute("data-model")
    text = "Not tedious, not amateurish, just a haunting piece of filmmaking."
    result = submit_and_wait(page, section, text, keyboard=True)
    expected = predict(model, text)
    assert text_of(result.find_element(By.CSS_SELECTOR, ".label-name")) == \
        expected["label"]
    rows = result.find_elements(By.CSS_SELECTOR, ".bar-row")
    shown = {}
    for row in rows:
        name = row.get_attribute("data-name")
        bar = row.find_element(By.CSS_SELECTOR, ".bar").rect["width"]
        fill = row.find_element(By.CSS_SELECTOR, ".bar-fill").rect["width"]
        shown[name] = fill / bar
        assert text_of(row.find_element(By.CSS_SELECTOR, ".bar-name")) == name
        probability = float(row.get_attribute("data-probability"))
        assert text_of(row.find_element(By.CSS_SELECTOR, ".bar-value")) == (
            "<0.1%" if 0 < probability < 0.001 else f"{100 * probability:.1f}%")
    probabilities = dict(zip(expected["class_names"],
                             expected["probabilities"]))
    assert shown.keys() == probabilities.keys()
    for name, width in shown.items():
        assert width == pytest.approx(probabilities[name], abs=0.005), name
    # the likeliest class first
    assert [r.get_attribute("data-name") for r in rows][0] == expected["label"]
    # the request, shown on demand
    request = section.find_element(By.CSS_SELECTOR, "details.request")
    summary = request.find_element(By.TAG_NAME, "summary")
    assert summary.text == "Show request"
    assert not request.find_element(By.CSS_SELECTOR,
                                    ".request-curl").is_displayed()
    summary.click()
    # (the page relabels the summary on the details' toggle event, which
    # the browser fires after the click returns)
    assert wait_for(page, lambda _: summary.text == "Hide request")
    assert request.find_element(By.CSS_SELECTOR,
                                ".request-curl").is_displayed()
    assert shown_request(section)[0] == {"signature_name": "serving_default",
                                         "instances": [text]}
    assert console_errors(page) == []
    panel_screenshot(page, section, models, screenshots)


def marked_entities(page, element):
    """[(text, type)] of the marked entities, and the paragraph's text
    without the type labels."""
    return page.execute_script("""
        const p = arguments[0];
        const marks = [...p.querySelectorAll("mark.entity")].map((m) => [
            m.querySelector(".entity-text").textContent, m.dataset.type,
            m.querySelector(".entity-type").textContent]);
        const copy = p.cloneNode(true);
        copy.querySelectorAll(".entity-type").forEach((t) => t.remove());
        return [marks, copy.textContent];""", element)


def test_ner_panel_marks_the_entities_of_the_api(page, predict, models,
                                                 screenshots):
    section = panel(page, "ner")
    model = section.get_attribute("data-model")
    for text in (NER_TEXT, "Castillo told reporters in New Harbor that "
                 "Northwind Bank had grown."):
        result = submit_and_wait(page, section, text)
        expected = predict(model, text)
        count = expected["entity_count"]
        entities = [(text[start:end], kind) for start, end, kind in zip(
            expected["entity_starts"][:count], expected["entity_ends"][:count],
            expected["entity_types"][:count])]
        marks, plain = marked_entities(
            page, result.find_element(By.CSS_SELECTOR, "p.entities"))
        assert [(t, kind) for t, kind, _ in marks] == entities
        assert all(kind == label for _, kind, label in marks)
        assert plain == text
        notes = result.find_elements(By.CSS_SELECTOR, ".note")
        assert bool(notes) == (count == 0)
        tokens = [text_of(t) for t in result.find_elements(
            By.CSS_SELECTOR, ".tokens .token")]
        assert tokens == [t for t in expected["tokens"] if t]
    assert console_errors(page) == []
    panel_screenshot(page, section, models, screenshots)


def test_entity_highlighting_counts_code_points(page):
    text = "😀 Zoë Müller flew to São Paulo with 🚀 Acme Corp. (ok)"
    spans = [("Zoë Müller", "PER"), ("São Paulo", "LOC"),
             ("Acme Corp.", "ORG")]
    entities = [{"start": text.index(s), "end": text.index(s) + len(s),
                 "type": kind} for s, kind in spans]
    # overlapping, empty and out-of-range entities are left out
    extra = [{"start": entities[1]["start"] + 2, "end": 40, "type": "X"},
             {"start": 3, "end": 3, "type": "X"},
             {"start": len(text) - 2, "end": len(text) + 1, "type": "X"}]
    element = page.execute_script(
        "const p = nlpseq.renderEntities(arguments[0], arguments[1]);"
        "document.body.append(p); return p;", text, entities + extra)
    try:
        marks, plain = marked_entities(page, element)
        assert [(t, kind) for t, kind, _ in marks] == spans
        assert plain == text
        colours = {m.get_attribute("data-type"): m.value_of_css_property(
            "background-color") for m in element.find_elements(
                By.CSS_SELECTOR, "mark.entity")}
        assert len(set(colours.values())) == 3
        assert "rgba(0, 0, 0, 0)" not in colours.values()
    finally:
        page.execute_script("arguments[0].remove()", element)
    # a type of its own has a colour of its own, always the same
    work, again, event = page.execute_script(
        "return ['WORK', 'WORK', 'EVENT'].map(nlpseq.entityColour)")
    assert work == again != event


def test_translation_panel_shows_the_beam(page, predict, models, screenshots):
    section = panel(page, "translation")
    model = section.get_attribute("data-model")
    text = "Zwei kleine Jungen essen einen Apfel im Schnee."
    result = submit_and_wait(page, section, text)
    expected = predict(model, text, "translate_beam")
    assert text_of(result.find_element(By.CSS_SELECTOR, ".translation")) == \
        expected["translations"][0]
    hypotheses = result.find_elements(By.CSS_SELECTOR, ".hypothesis")
    assert [text_of(h.find_element(By.CSS_SELECTOR, ".hypothesis-text"))
            for h in hypotheses] == expected["translations"]
    assert [float(h.get_attribute("data-score")) for h in hypotheses] == \
        pytest.approx(expected["scores"], abs=1e-6)
    assert [text_of(h.find_element(By.CSS_SELECTOR, ".hypothesis-score"))
            for h in hypotheses] == [f"{s:.3f}" for s in expected["scores"]]
    assert console_errors(page) == []
    panel_screenshot(page, section, models, screenshots)


def test_next_word_panel_updates_as_you_type_and_generates(
        page, predict, models, screenshots):
    section = panel(page, "next-word")
    model = section.get_attribute("data-model")
    textarea = section.find_element(By.TAG_NAME, "textarea")
    words = section.find_element(By.CSS_SELECTOR, ".next-words")
    textarea.send_keys(Keys.CONTROL, "a")
    textarea.send_keys(Keys.DELETE)
    page.execute_script("delete arguments[0].dataset.text", words)
    text = "on sunday i want"
    textarea.send_keys(text)  # typed: the list follows (debounced)
    wait_for(page, lambda d: words.get_attribute("data-text") == text
             and words.get_attribute("data-state") == "done")
    expected = predict(model, text)
    shown = words.find_elements(By.CSS_SELECTOR, "button.word")
    assert [b.get_attribute("data-word") for b in shown] == expected["tokens"]
    assert [text_of(b.find_element(By.CSS_SELECTOR, ".word-text"))
            for b in shown] == expected["tokens"]
    assert [float(b.get_attribute("data-probability")) for b in shown] == \
        pytest.approx(expected["probabilities"], abs=1e-6)

    # a click on a word appends it, and the list follows
    shown[0].click()
    longer = f"{text} {expected['tokens'][0]}"
    assert textarea.get_property("value") == longer
    wait_for(page, lambda d: words.get_attribute("data-text") == longer
             and words.get_attribute("data-state") == "done")
    assert [b.get_attribute("data-word") for b in words.find_elements(
        By.CSS_SELECTOR, "button.word")] == predict(model, longer)["tokens"]

    signatures = picker(section)
    assert [o.get_attribute("value") for o in signatures.options] == [
        "generate_greedy", "generate_beam", "serving_default"]
    for name, keyboard in (("generate_greedy", False),
                           ("generate_beam", True)):
        signatures.select_by_value(name)
        result = submit_and_wait(page, section, text, keyboard=keyboard,
                                 signature=name)
        generated = predict(model, text, name)["text"]
        assert text_of(result.find_element(By.CSS_SELECTOR,
                                           ".continuation")) == generated
        assert text_of(result.find_element(By.CSS_SELECTOR, ".prompt")) == \
            text + " "
    signatures.select_by_value("generate_greedy")
    submit_and_wait(page, section, text, signature="generate_greedy")
    assert console_errors(page) == []
    panel_screenshot(page, section, models, screenshots)


def test_server_errors_are_shown_in_the_panel(page, server_url):
    section = panel(page, "classifier")
    model = section.get_attribute("data-model")
    # the page's next request asks for a signature the model lacks
    page.execute_script("""
        const fetch = window.fetch;
        window.fetch = (url, init) => {
            window.fetch = fetch;
            const body = JSON.parse(init.body);
            body.signature_name = "no_such_signature";
            return fetch(url, {...init, body: JSON.stringify(body)});
        };""")
    textarea = section.find_element(By.TAG_NAME, "textarea")
    result = section.find_element(By.CSS_SELECTOR, ".result")
    page.execute_script("delete arguments[0].dataset.text", result)
    set_text(page, textarea, "a good film")
    section.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(page, lambda d: result.get_attribute("data-state") == "error")
    answer, status = post(f"{server_url}/v1/models/{model}:predict",
                          {"signature_name": "no_such_signature",
                           "instances": ["a good film"]})
    assert status == 400
    error = result.find_element(By.CSS_SELECTOR, ".error[role=alert]")
    assert text_of(error) == answer["error"]
    # the browser reports the failed request itself, and nothing else
    errors = console_errors(page)
    assert errors and all(" 400 " in e["message"] for e in errors), errors
    # and the panel works again
    submit_and_wait(page, section, "Not tedious, not amateurish, just a "
                    "haunting piece of filmmaking.")


def test_page_layout_is_responsive(page, screenshots):
    def columns():
        return len({round(s.rect["x"]) for s in page.find_elements(
            By.CSS_SELECTOR, "section.panel")})

    width = page.get_window_size()["width"]
    try:
        page.set_window_size(1280, 1000)
        assert columns() == 2
        if screenshots:
            screenshot(page, page.find_element(By.TAG_NAME, "body"),
                       screenshots / "serve_page.png")
        page.set_window_size(420, 1000)
        assert columns() == 1
        assert page.execute_script(
            "return document.documentElement.scrollWidth") <= page.execute_script(
            "return document.documentElement.clientWidth")
    finally:
        page.set_window_size(width, 1000)
    assert console_errors(page) == []


def test_an_empty_box_gives_a_hint_and_sends_no_request(page, models):
    sent = spy_on_predict(page)
    sections = page.find_elements(By.CSS_SELECTOR, "section.panel")
    for section in sections:
        request = section.find_element(By.CSS_SELECTOR, "details.request")
        for text, keyboard in (("", False), (" \n\t ", True)):
            result = submit(page, section, text, keyboard)
            wait_for(page, lambda d, r=result, t=text: r.get_attribute(
                "data-text") == t and r.get_attribute("data-state") == "hint")
            hint = result.find_element(By.CSS_SELECTOR, ".hint")
            assert hint.is_displayed()
            assert hint.text.startswith(("Type ", "Write "))
            example = models[section.get_attribute("data-model")]["example"]
            if example:  # the hint offers the panel's example
                assert text_of(hint.find_element(
                    By.CSS_SELECTOR, "button.use-example")) == example
            # and the request view, emptied, is hidden
            assert not request.is_displayed()
            assert text_of(request.find_element(
                By.CSS_SELECTOR, ".request-json")) == ""
    # the next words: emptied by typing, a hint too
    section = panel(page, "next-word")
    words = section.find_element(By.CSS_SELECTOR, ".next-words")
    textarea = section.find_element(By.TAG_NAME, "textarea")
    textarea.send_keys(Keys.CONTROL, "a")
    textarea.send_keys(Keys.DELETE)
    wait_for(page, lambda d: words.get_attribute("data-text") == ""
             and words.get_attribute("data-state") == "hint")
    assert sent() == []
    # the example of a hint fills the box
    section = panel(page, "classifier")
    example = section.find_element(By.CSS_SELECTOR, ".hint button.use-example")
    example.click()
    assert section.find_element(By.TAG_NAME, "textarea").get_property(
        "value") == text_of(example)
    assert sent() == []
    assert console_errors(page) == []


#: A review with what a shell would otherwise read: quotes, $, `, \, !
QUOTED = ("It's not a 'bad' film: \"great\" $HOME `date` \\ 100% ! 😀\n"
          "Zoë's best.")


def test_the_request_and_its_curl_line_give_what_the_page_shows(
        page, server_url):
    section = panel(page, "classifier")
    model = section.get_attribute("data-model")
    result = submit_and_wait(page, section, QUOTED)
    label = text_of(result.find_element(By.CSS_SELECTOR, ".label-name"))
    shown = {row.get_attribute("data-name"): float(row.get_attribute(
        "data-probability")) for row in result.find_elements(
            By.CSS_SELECTOR, ".bar-row")}
    body, line = shown_request(section)
    assert body == {"signature_name": "serving_default", "instances": [QUOTED]}
    # one shell word each, as a POSIX shell reads them
    words = shlex.split(line)
    assert words[:2] == ["curl", "-d"] and len(words) == 4
    assert json.loads(words[2]) == body
    url = f"{server_url}/v1/models/{model}:predict"
    assert words[3] == url
    answers = [post(url, json.loads(words[2]))[0]]
    if shutil.which("curl") and shutil.which("sh"):
        ran = subprocess.run(["sh", "-c", line], capture_output=True,
                             timeout=60, check=True)
        answers.append(json.loads(ran.stdout))
    for answer in answers:
        row = answer["predictions"][0]
        assert row["label"] == label
        assert dict(zip(row["class_names"], row["probabilities"])) == \
            pytest.approx(shown, abs=1e-6)
    assert console_errors(page) == []


def test_shell_quoting_gives_back_the_word(page):
    if not shutil.which("sh"):
        pytest.skip("needs a POSIX shell (sh)")
    for word in ("plain", "", "'", "it's", "''a''", "a b", "$HOME `date`",
                 '"\\" !x *', "😀\nnew line", "http://127.0.0.1:1/v1:p"):
        quoted = page.execute_script("return nlpseq.shellQuote(arguments[0])",
                                     word)
        ran = subprocess.run(["sh", "-c", f"printf %s {quoted}"],
                             capture_output=True, timeout=10, check=True)
        assert ran.stdout.decode() == word, quoted


def text_only(signature):
    """Whether the signature takes one batch of strings (not the Classify
    API's serialized tf.Example, ``inputs``)."""
    inputs = signature["inputs"]
    return len(inputs) == 1 and "inputs" not in inputs and list(
        inputs.values()) == [{"dtype": "DT_STRING", "shape": [-1]}]


def test_each_panel_offers_its_text_only_signatures(page, models):
    first = {"classifier": ["serving_default"], "ner": ["serving_default"],
             "translation": ["translate_beam", "serving_default"],
             "next-word": ["generate_greedy", "generate_beam"]}
    for section in page.find_elements(By.CSS_SELECTOR, "section.panel"):
        kind = section.get_attribute("data-kind")
        if kind == "generic":
            continue
        signatures = models[section.get_attribute("data-model")]["signatures"]
        offered = [o.get_attribute("value") for o in picker(section).options]
        assert sorted(offered) == sorted(
            n for n, s in signatures.items() if text_only(s))
        assert offered[:len(first[kind])] == first[kind]
        assert picker(section).first_selected_option.get_attribute(
            "value") == first[kind][0]
    # those with other inputs are left out
    offered = [o.get_attribute("value") for o in picker(
        panel(page, "translation")).options]
    assert "translate" not in offered and "translate_greedy" in offered
    example = {"inputs": {"inputs": {"dtype": "DT_STRING", "shape": [-1]}},
               "outputs": {}}
    text = {"inputs": {"text": {"dtype": "DT_STRING", "shape": [-1]}},
            "outputs": {}}
    assert page.execute_script(
        "return [...arguments].map((s) => nlpseq.textOnly(s))", example, text,
        dict(text, method_name="tensorflow/serving/classify")) == [
            False, True, False]


def test_picking_another_signature_changes_the_request_and_the_result(
        page, predict):
    section = panel(page, "translation")
    model = section.get_attribute("data-model")
    description = section.find_element(By.CSS_SELECTOR, ".description")
    text = "Zwei Jungen spielen im Schnee."
    signatures = picker(section)
    try:
        seen = set()
        for name in ("translate_greedy", "serving_default"):
            signatures.select_by_value(name)
            seen.add(description.text)
            result = submit_and_wait(page, section, text, signature=name)
            assert shown_request(section)[0]["signature_name"] == name
            expected = predict(model, text, name)
            assert text_of(result.find_element(
                By.CSS_SELECTOR, ".translation")) == expected["translation"]
            scores = [float(h.get_attribute("data-score")) for h in
                      result.find_elements(By.CSS_SELECTOR, ".hypothesis")]
            assert scores == pytest.approx([expected["score"]], abs=1e-6)
        assert len(seen) == 2
    finally:
        signatures.select_by_value("translate_beam")

    # a signature the panel does not draw: its answer as JSON
    section = panel(page, "next-word")
    model = section.get_attribute("data-model")
    signatures = picker(section)
    try:
        signatures.select_by_value("serving_default")
        result = submit_and_wait(page, section, "on sunday i want",
                                 signature="serving_default")
    finally:
        signatures.select_by_value("generate_greedy")
    body, _ = shown_request(section)
    assert body == {"signature_name": "serving_default",
                    "instances": ["on sunday i want"]}
    answer = json.loads(text_of(result.find_element(By.CSS_SELECTOR,
                                                    "pre.json")))
    expected = predict(model, "on sunday i want")
    assert answer["predictions"][0]["tokens"] == expected["tokens"]
    assert answer["predictions"][0]["probabilities"] == pytest.approx(
        expected["probabilities"], abs=1e-6)
    assert console_errors(page) == []
