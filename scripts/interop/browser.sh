# The browser part of the interop environment: headless Chromium and its WebDriver, for
# certwatch-server's browser test (crates/server/tests/browser_interop.rs). It starts no
# process: the test starts chromedriver itself on a free port.
# shellcheck shell=bash
#
# Description (describe/browser.json, key "browser"):
#   {"chromium": "/usr/bin/chromium", "chromedriver": "/usr/bin/chromedriver",
#    "version": "<chromium --version>"}

browser_packages() { echo chromium chromium-driver openssl; }

browser_up() {
  local chromium chromedriver version
  chromium=$(command -v chromium) || cw_die "browser: no chromium (package chromium)"
  chromedriver=$(command -v chromedriver) || cw_die "browser: no chromedriver (package chromium-driver)"
  version=$("$chromium" --version 2>/dev/null | head -n 1) || cw_die "browser: $chromium --version failed"
  "$chromedriver" --version >/dev/null 2>&1 || cw_die "browser: $chromedriver --version failed"
  cw_log "browser: $version"
  printf '{"chromium": "%s", "chromedriver": "%s", "version": "%s"}\n' \
    "$chromium" "$chromedriver" "$version" >"$CW_DIR/describe/browser.json"
}

browser_down() { :; }
