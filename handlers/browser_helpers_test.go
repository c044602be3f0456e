package handlers_test

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The browser tests drive a real headless Chromium with chromedp. One browser
// process serves every test; each test gets its own browser contexts (separate
// cookies, like separate people) under a deadline.

// browserTestTimeout bounds one browser test, end to end.
const browserTestTimeout = 2 * time.Minute

// TestMain runs the tests, then stops the shared Chromium if one was started.
func TestMain(m *testing.M) {
	code := m.Run()
	chrome.stop()
	os.Exit(code)
}

// sharedChrome is the one Chromium the browser tests share.
type sharedChrome struct {
	once    sync.Once
	ctx     context.Context // the first tab's chromedp context: it owns the browser
	cancels []context.CancelFunc
	dir     string
	err     error
}

var chrome sharedChrome

// chromePath returns the Chromium to drive: $CHROME_PATH, else /usr/bin/chromium.
// Without one, the test skips on a developer machine but fails in CI (CI=true).
func chromePath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROME_PATH")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("browser test needs Chromium at %s (install it with `apt-get install -y chromium` or set CHROME_PATH): %v", path, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

func (c *sharedChrome) start(path string) {
	c.dir, c.err = os.MkdirTemp("", "grconnect-chromium-")
	if c.err != nil {
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(c.dir),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	c.ctx, c.cancels = ctx, []context.CancelFunc{cancelCtx, cancelAlloc}
	// The first Do starts the browser; its context must not carry a deadline
	// (that would end the browser), so a watchdog stops a start that hangs.
	watchdog := time.AfterFunc(time.Minute, cancelCtx)
	defer watchdog.Stop()
	if err := chromedp.Do(ctx); err != nil {
		c.err = fmt.Errorf("start Chromium at %s: %w", path, err)
	}
}

func (c *sharedChrome) stop() {
	for _, cancel := range c.cancels {
		cancel()
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// browserTest returns a context on the shared Chromium that ends with the test
// or after browserTestTimeout. Every browser session of the test derives from it.
func browserTest(t *testing.T) context.Context {
	t.Helper()
	path := chromePath(t)
	chrome.once.Do(func() { chrome.start(path) })
	if chrome.err != nil {
		t.Fatal(chrome.err)
	}
	ctx, cancel := context.WithTimeout(chrome.ctx, browserTestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// session is one person at one browser: a tab in a browser context of its own
// (own cookies), on the server at base.
type session struct {
	t     *testing.T
	ctx   context.Context
	base  string // the server's URL
	who   string // names the session in failures
	shots *screenshots
	// checked holds the paths already given the accessibility check; fitted those
	// that passed the phone-width check.
	checked, fitted map[string]bool
	// onPhone is set while the tab emulates a phone.
	onPhone bool
}

// newSession opens a tab in a fresh browser context.
func newSession(t *testing.T, parent context.Context, base, who string, shots *screenshots) *session {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: open a tab: %v", who, err)
	}
	return &session{t: t, ctx: ctx, base: base, who: who, shots: shots, checked: map[string]bool{}}
}

func (s *session) fatalf(format string, args ...any) {
	s.t.Helper()
	loc, _ := chromedp.Run(s.ctx, chromedp.Location())
	s.t.Fatalf("%s at %s: %s", s.who, loc, fmt.Sprintf(format, args...))
}

// open loads a path (or an absolute URL) and returns the HTTP status.
func (s *session) open(path string) int64 {
	s.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = s.base + path
	}
	resp, err := chromedp.Run(s.ctx, chromedp.NavigateResponse(u))
	if err != nil {
		s.fatalf("open %s: %v", u, err)
	}
	return responseStatus(resp)
}

// follow runs steps that cause a navigation (a click, an Enter key), waits
// until the new page has loaded and returns its HTTP status.
func (s *session) follow(what string, steps ...chromedp.Action[chromedp.Void]) int64 {
	s.t.Helper()
	resp, err := chromedp.RunResponse(s.ctx, steps...)
	if err != nil {
		s.fatalf("%s: %v", what, err)
	}
	return responseStatus(resp)
}

// responseStatus is the HTTP status of a page load (0 when there was none).
func responseStatus(r *network.Response) int64 {
	if r == nil {
		return 0
	}
	return r.Status
}

// click presses the element matching the CSS selector and waits for the page it leads to.
func (s *session) click(sel string) int64 {
	s.t.Helper()
	return s.follow("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// do runs steps that stay on the page.
func (s *session) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if err := chromedp.Do(s.ctx, steps...); err != nil {
		s.fatalf("%s: %v", what, err)
	}
}

// fill types a value into an empty input, key by key.
func (s *session) fill(sel, value string) {
	s.t.Helper()
	s.do("fill "+sel, chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), value))
}

// text returns the visible text of the first element matching the CSS selector,
// waiting for it to appear.
func (s *session) text(sel string) string {
	s.t.Helper()
	v, err := chromedp.Run(s.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		s.fatalf("text of %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(v), " ")
}

// value returns the value of the input matching the CSS selector.
func (s *session) value(sel string) string {
	s.t.Helper()
	v, err := chromedp.Run(s.ctx, chromedp.Value(chromedp.CSS(sel), chromedp.NodeReady))
	if err != nil {
		s.fatalf("value of %s: %v", sel, err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page.
func evalIn[T any](s *session, js string) T {
	s.t.Helper()
	v, err := chromedp.Run(s.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		s.fatalf("evaluate %q: %v", js, err)
	}
	return v
}

// path is the current page's path (without query).
func (s *session) path() string {
	s.t.Helper()
	return evalIn[string](s, "location.pathname")
}

// count is the number of elements matching the CSS selector right now.
func (s *session) count(sel string) int {
	s.t.Helper()
	return evalIn[int](s, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

// wantText fails unless the element's text contains every want.
func (s *session) wantText(sel string, wants ...string) string {
	s.t.Helper()
	got := s.text(sel)
	for _, w := range wants {
		if !strings.Contains(got, w) {
			s.fatalf("%s reads %q, want it to contain %q", sel, got, w)
		}
	}
	return got
}

// wantStatus fails unless the page came with the HTTP status want.
func (s *session) wantStatus(got, want int64, what string) {
	s.t.Helper()
	if got != want {
		s.fatalf("%s answered HTTP %d, want %d", what, got, want)
	}
}

// page checks the page now shown against the accessibility rules, records its
// path as checked, and takes a screenshot named step.
func (s *session) page(step string) {
	s.t.Helper()
	p := s.path()
	problems := evalIn[[]string](s, a11yCheckJS)
	// The same page in the dark colour scheme.
	s.do("emulate dark mode", colorScheme("dark"))
	for _, d := range evalIn[[]string](s, a11yCheckJS) {
		problems = append(problems, "dark mode: "+d)
	}
	s.do("end dark mode", colorScheme(""))
	if len(problems) > 0 {
		s.t.Fatalf("%s: accessibility check failed on %s (%s):\n  %s", s.who, p, step, strings.Join(problems, "\n  "))
	}
	s.checked[p] = true
	s.shots.take(s, step)
}

// Phone is the narrow viewport of the layout checks: an iPhone 12 to 15, in CSS pixels.
const phoneWidth, phoneHeight = 390, 844

// phone makes the session's tab a phone screen (mobile viewport, 390 × 844), or,
// with on false, the desktop window again.
func (s *session) phone(on bool) {
	s.t.Helper()
	s.onPhone = on
	s.do("emulate a phone", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if !on {
			_, err := cdp.Call(ctx, t, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
			return err
		}
		_, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: phoneWidth, Height: phoneHeight, DeviceScaleFactor: 1, Mobile: true,
		})
		return err
	}))
}

// timeZone makes the session's browser live in an IANA zone, as a person abroad.
func (s *session) timeZone(zone string) {
	s.t.Helper()
	s.do("emulate the time zone "+zone, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone})
		return err
	}))
}

// fits fails unless the page now shown fits the viewport's width (see
// testdata/fits-width.js), in light and dark mode, records its path as fitted (on
// a phone) and takes a screenshot named step.
func (s *session) fits(step string) {
	s.t.Helper()
	p := s.path()
	problems := evalIn[[]string](s, fitsWidthJS)
	if w := evalIn[int](s, "document.documentElement.clientWidth"); s.onPhone && w != phoneWidth {
		problems = append(problems, fmt.Sprintf("the viewport is %d px wide, want the phone's %d", w, phoneWidth))
	}
	s.do("emulate dark mode", colorScheme("dark"))
	for _, d := range evalIn[[]string](s, fitsWidthJS) {
		problems = append(problems, "dark mode: "+d)
	}
	s.do("end dark mode", colorScheme(""))
	if len(problems) > 0 {
		s.t.Fatalf("%s: %s (%s) does not fit the viewport's width:\n  %s", s.who, p, step, strings.Join(problems, "\n  "))
	}
	if s.fitted == nil {
		s.fitted = map[string]bool{}
	}
	if s.onPhone {
		s.fitted[p] = true
	}
	s.shots.take(s, step)
}

// fitsWidthJS lists the ways the page is wider than the viewport: the document
// scrolls sideways, a box other than a code block scrolls sideways, or visible
// text or a control sits past the right edge.
//
//go:embed testdata/fits-width.js
var fitsWidthJS string

// colorScheme emulates prefers-color-scheme (empty: the browser's own, light).
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		params := emulation.SetEmulatedMediaParams{}
		if scheme != "" {
			params.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
		}
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, params)
		return err
	})
}

// tabTo presses Tab until the focused element matches the CSS selector and
// returns the number of presses; every element focused on the way must show a
// visible focus indicator.
func (s *session) tabTo(sel string, max int) int {
	s.t.Helper()
	for i := 1; i <= max; i++ {
		s.do("press Tab", chromedp.KeyEvent(kb.Tab))
		focus := evalIn[focusInfo](s, focusJS)
		if !focus.Visible {
			s.fatalf("Tab %d focused %s with no visible focus indicator", i, focus.Desc)
		}
		if evalIn[bool](s, fmt.Sprintf("document.activeElement !== null && document.activeElement.matches(%q)", sel)) {
			return i
		}
	}
	s.fatalf("%d presses of Tab never focused %s", max, sel)
	return 0
}

// waitFocus waits (briefly) until the element matching the CSS selector has the
// focus: autofocus and fragment targets take effect with the next frame.
func (s *session) waitFocus(sel string) {
	s.t.Helper()
	js := fmt.Sprintf("document.activeElement !== null && document.activeElement.matches(%q)", sel)
	if _, err := chromedp.Run(s.ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		s.fatalf("the focus never reached %s (it is on %s): %v", sel, s.focused().Desc, err)
	}
}

// focused describes the element that has the keyboard focus.
func (s *session) focused() focusInfo {
	s.t.Helper()
	return evalIn[focusInfo](s, focusJS)
}

// focusInfo describes the focused element.
type focusInfo struct {
	Desc    string `json:"desc"`
	Visible bool   `json:"visible"`
}

// focusJS describes document.activeElement and whether it shows a focus ring
// (an outline or the stylesheet's box-shadow).
//
//go:embed testdata/focus.js
var focusJS string

// a11yCheckJS returns one line per accessibility problem on the page:
//   - every input, select and textarea (not hidden; submit-like inputs need a value)
//     has a label: label[for] with text, aria-label or aria-labelledby;
//   - every img has alt; every svg is aria-hidden="true" or role="img" with a
//     <title>, aria-label or aria-labelledby;
//   - headings start at h1 and never skip a level going down; exactly one h1;
//   - exactly one <main> landmark; <html lang>; a <title>; unique ids;
//   - every link and button has an accessible name;
//   - text contrast meets WCAG AA (4.5:1, large text 3:1).
//
//go:embed testdata/a11y-check.js
var a11yCheckJS string

// screenshots saves a PNG of each step into a directory: a temporary one, or
// $GRCONNECT_SCREENSHOTS (relative to the repository root) to refresh docs/screenshots.
type screenshots struct {
	t   *testing.T
	dir string
	mu  sync.Mutex
	n   int
}

func newScreenshots(t *testing.T, prefix string) *screenshots {
	t.Helper()
	dir := t.TempDir()
	if env := os.Getenv("GRCONNECT_SCREENSHOTS"); env != "" {
		dir = env
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(repoRoot(t), dir)
		}
		dir = filepath.Join(dir, prefix)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &screenshots{t: t, dir: dir}
}

// take saves the whole page as dir/NN-step.png; on a phone, its first screen
// (what the phone shows before any scrolling).
func (sh *screenshots) take(s *session, step string) {
	sh.t.Helper()
	shot := chromedp.FullScreenshot(100)
	if s.onPhone {
		shot = chromedp.CaptureScreenshot()
	}
	png, err := chromedp.Run(s.ctx, shot)
	if err != nil {
		s.fatalf("screenshot %s: %v", step, err)
	}
	sh.mu.Lock()
	sh.n++
	name := fmt.Sprintf("%02d-%s.png", sh.n, step)
	sh.mu.Unlock()
	if err := os.WriteFile(filepath.Join(sh.dir, name), png, 0o644); err != nil {
		sh.t.Fatal(err)
	}
}

// repoRoot is the directory holding go.mod, above the test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// fromMenu opens the page's More menu and presses its item sel, waiting for the
// page it leads to.
func (s *session) fromMenu(sel string) int64 {
	s.t.Helper()
	s.do("open the More menu", chromedp.Click(chromedp.CSS(`[data-testid="more-actions"] > summary`), chromedp.NodeVisible))
	return s.click(`[data-testid="more-actions"] ` + sel)
}
