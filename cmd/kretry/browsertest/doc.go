// Package browsertest drives "kretry console" in headless Chromium against
// a cluster with a seeded DLT. It is a module of its own so that chromedp
// never enters kretry's go.mod. The test skips when no Chromium is
// installed, unless KRETRY_REQUIRE_BROWSER=1 (set by .ci/run) makes that a
// failure; it uses the broker in KRETRY_BROKERS, or an in-process kfake
// cluster. Screenshots go to $KRETRY_BROWSER_ARTIFACTS, or to a new
// temporary directory the test names in its log.
package browsertest
