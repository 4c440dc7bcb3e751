"""The real dashboard server driven by a real headless Chromium (Debian's chromium + chromium-driver, selenium).

Nothing is downloaded: the browser and its driver come from the system (``.ci/run`` installs them).
Screenshots are saved under the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
DRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and Path(p).is_file()), None)

#: .ci/run sets this: there a missing browser fails the test instead of skipping it.
REQUIRED = bool(os.environ.get("LMDIFF_REQUIRE_BROWSER"))
pytestmark = pytest.mark.skipif(
    (CHROMIUM is None or DRIVER is None) and not REQUIRED,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")
pytest.importorskip("streamlit", reason="needs streamlit (pip install 'lmdiff[dashboard]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.helpers import free_port, stop_process  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("the dashboard did not answer")


@pytest.fixture
def server(runs_root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "lmdiff.cli.main", "dashboard", str(runs_root), "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url, proc)
        yield url
    finally:
        stop_process(proc, timeout=20)
        log.close()


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and DRIVER, "chromium and chromedriver are required here (LMDIFF_REQUIRE_BROWSER is set)"

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    opts.page_load_strategy = "none"  # get() returns at once; the waits below wait for what the test needs
    drv = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
    drv.command_executor._client_config.timeout = 600  # a loaded machine can take minutes per command
    try:
        yield drv
    finally:
        drv.quit()


def _click(drv, xpath: str, timeout: float = 600) -> None:  # type: ignore[no-untyped-def]
    el = WebDriverWait(drv, timeout).until(ec.element_to_be_clickable((By.XPATH, xpath)))
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
    el.click()


def _button(text: str) -> str:
    return f"//button[contains(normalize-space(.), '{text}')]"


def _tab(text: str) -> str:
    return f"//*[@role='tab'][contains(normalize-space(.), '{text}')]"


def test_open_a_run_then_score_typed_text_in_a_real_browser(server: str, browser, runs_root: Path,  # type: ignore[no-untyped-def]
                                                            tmp_path: Path) -> None:
    import json

    first = json.loads((runs_root / "tiny" / "results.json").read_text())["findings"][0]["statement"]
    wait = WebDriverWait(browser, 600)
    browser.get(f"{server}/?run=tiny")
    wait.until(ec.presence_of_element_located((By.XPATH, "//h3[contains(., 'Findings')]")))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".lmdiff-heatmap .lmdiff-tok")) > 10)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert f"1. {first}" in body  # the run's first finding is on the page
    browser.save_screenshot(str(tmp_path / "run.png"))

    browser.get(f"{server}/?run=tiny&page=tools")
    _click(browser, _button("Load the pair"))
    wait.until(ec.presence_of_element_located((By.XPATH, "//*[contains(text(), 'Loaded:')]")))
    _click(browser, _tab("KL on your text"))
    box = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "textarea[aria-label='text to score']")))
    box.send_keys(Keys.CONTROL, "a")  # clear() does not reach Streamlit's React state
    box.send_keys(Keys.DELETE)
    box.send_keys("Berlin is the capital of Germany.")
    _click(browser, _button("Score per-token KL"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".lmdiff-tok[title*='finetuned next']")) >= 5)
    toks = browser.find_elements(By.CSS_SELECTOR, ".lmdiff-tok[title*='finetuned next']")
    assert "".join(t.text for t in toks).strip().endswith("Berlin is the capital of Germany.")
    coloured = [t for t in toks if float(t.get_attribute("data-value")) > 0
                and t.value_of_css_property("background-color") not in ("rgba(0, 0, 0, 0)", "rgba(220, 40, 40, 0)")]
    assert coloured, "no token is coloured by KL"
    browser.save_screenshot(str(tmp_path / "kl.png"))
    assert (tmp_path / "run.png").stat().st_size > 1000 and (tmp_path / "kl.png").stat().st_size > 1000
