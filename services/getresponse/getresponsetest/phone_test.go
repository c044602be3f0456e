package getresponsetest

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsentPageFitsAPhone opens the consent page in headless Chromium at
// 390 px wide, with long names in it: nothing may scroll sideways, and the
// fake's own stylesheet must apply (no inline style is needed or allowed).
func TestConsentPageFitsAPhone(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium := os.Getenv("CHROME_PATH")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("needs Chromium at %s (or CHROME_PATH): %v", chromium, err)
	}
	s := NewServer(Options{Prefix: "/demo-getresponse"})
	t.Cleanup(s.Close)
	longID := "an-application-with-a-very-long-client-identifier-" + strings.Repeat("x", 40)
	s.AddClient(longID, "secret", redirectURL)
	s.AddAccount(Account{FirstName: "Bartholomew-Maximilian", LastName: "Oppenheimer-Wolfeschlegelsteinhausen",
		CompanyName: "International Consolidated Widgets and Sprockets Manufacturing Limited",
		Email:       "bartholomew.maximilian.oppenheimer@international-consolidated-widgets.example.com"})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(cancelTimeout)

	page := s.AuthURL() + "?" + url.Values{"response_type": {"code"}, "client_id": {longID}, "state": {"st"}}.Encode()
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	type layout struct {
		Viewport    int    `json:"viewport"`
		ScrollWidth int    `json:"scrollWidth"`
		MainWidth   string `json:"mainWidth"`
		Widest      string `json:"widest"`
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[layout](`(() => {
	  let widest = "", w = 0;
	  document.querySelectorAll("body *").forEach(el => {
	    const r = el.getBoundingClientRect();
	    if (r.right > w) { w = r.right; widest = el.tagName + " " + Math.round(r.right); }
	  });
	  return {viewport: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
	          mainWidth: getComputedStyle(document.querySelector("main")).maxWidth, widest: widest};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	// On a phone, content wider than the screen widens the layout viewport.
	if got.Viewport != 390 || got.ScrollWidth > 390 {
		t.Errorf("the page is %d px wide (viewport %d px) on a 390 px phone (widest: %s)", got.ScrollWidth, got.Viewport, got.Widest)
	}
	if got.MainWidth != "576px" {
		t.Errorf("main's max-width is %q: the stylesheet did not apply", got.MainWidth)
	}
	if dir := os.Getenv("SCREENSHOTS"); dir != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(dir+"/consent-390.png", png, 0o644)
		}
		if err != nil {
			t.Error(err)
		}
	}
}
