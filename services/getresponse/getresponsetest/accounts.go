package getresponsetest

import (
	"slices"
	"strings"
	"time"
)

// Account is a GetResponse account the consent page offers, with its "From"
// addresses and campaigns.
type Account struct {
	AccountID string
	// Domain is the custom domain of a GetResponse MAX account: the consent
	// page for that domain offers it, and its codes and tokens work only with
	// that X-Domain. "" is a standard account, or one of Options.MaxDomain.
	Domain string
	// Unlisted keeps the account off the consent page (it can still be
	// approved by AccountID): demo mode's seeded customers, which would
	// otherwise crowd the visitor's choice.
	Unlisted          bool
	Email             string
	FirstName         string
	LastName          string
	CompanyName       string
	Phone             string
	State             string
	City              string
	Street            string
	ZipCode           string
	NumberOfEmployees string
	TimeFormat        string
	CountryCodeID     string
	CountryCode       string
	IndustryTagID     string
	TimeZoneName      string
	TimeZoneOffset    string
	FromFields        []FromField
	Campaigns         []Campaign
}

// FromField is a "From" address of an Account.
type FromField struct {
	FromFieldID    string
	Email          string
	Name           string
	RewrittenEmail *string // null when nil
	IsActive       bool
	IsDefault      bool
	CreatedOn      time.Time
	DomainStatus   string  // null when ""
	DKIMWarning    *string // null when nil
}

// Campaign is a campaign (contact list) of an Account.
type Campaign struct {
	CampaignID   string
	Name         string
	TechName     string
	LanguageCode string
	Description  string
	IsDefault    bool
	CreatedOn    time.Time
}

// DefaultAccountID is the id of the account every Fake starts with.
const DefaultAccountID = "VfEy1"

// DefaultAccount returns the account of GetResponse's official examples
// (VfEy1, John Smith of MyBigCompany) with the example "From" address TTzW
// and campaign V3J. Change a copy and pass it to AddAccount to vary it.
func DefaultAccount() Account {
	return Account{
		AccountID:         DefaultAccountID,
		Email:             "john.smith@test.com",
		FirstName:         "John",
		LastName:          "Smith",
		CompanyName:       "MyBigCompany",
		Phone:             "+00155555555",
		State:             "Oklahoma",
		City:              "Alderson",
		Street:            "Sunset blv.",
		ZipCode:           "81-611",
		NumberOfEmployees: "500",
		TimeFormat:        "24h",
		CountryCodeID:     "175",
		CountryCode:       "PL",
		IndustryTagID:     "1",
		TimeZoneName:      "Europe/Warsaw",
		TimeZoneOffset:    "+01:00",
		FromFields: []FromField{{
			FromFieldID:  "TTzW",
			Email:        "jsmith@example.com",
			Name:         "John Smith",
			IsActive:     true,
			IsDefault:    true,
			CreatedOn:    time.Date(2017, 3, 13, 19, 32, 52, 0, time.UTC),
			DomainStatus: "confirmed",
		}},
		Campaigns: []Campaign{{
			CampaignID:   "V3J",
			Name:         "my_campaign",
			TechName:     "my_campaign",
			LanguageCode: "EN",
			Description:  "my_campaign",
			IsDefault:    true,
			CreatedOn:    time.Date(2014, 2, 12, 15, 19, 21, 0, time.UTC),
		}},
	}
}

// DemoAccounts returns the accounts every Fake starts with: DefaultAccount
// first, then a few more to choose from on the consent page.
func DemoAccounts() []Account {
	maria := Account{
		AccountID: "Qm7Kp", Email: "maria.kowalska@example.com", FirstName: "Maria", LastName: "Kowalska",
		CompanyName: "Kowalska Studio", Phone: "+48221234567", City: "Kraków", Street: "ul. Floriańska 12",
		ZipCode: "31-019", NumberOfEmployees: "5", TimeFormat: "24h", CountryCodeID: "175", CountryCode: "PL",
		IndustryTagID: "7", TimeZoneName: "Europe/Warsaw", TimeZoneOffset: "+01:00",
		FromFields: []FromField{{
			FromFieldID: "Kw8Z", Email: "hello@kowalska.example.com", Name: "Kowalska Studio",
			IsActive: true, IsDefault: true, CreatedOn: time.Date(2021, 6, 1, 9, 0, 0, 0, time.UTC), DomainStatus: "confirmed",
		}},
		Campaigns: []Campaign{
			{CampaignID: "pL4a", Name: "newsletter_pl", TechName: "newsletter_pl", LanguageCode: "PL", Description: "Newsletter", IsDefault: true, CreatedOn: time.Date(2021, 6, 1, 9, 5, 0, 0, time.UTC)},
			{CampaignID: "pL4b", Name: "webinar_2024", TechName: "webinar_2024", LanguageCode: "PL", Description: "Webinar sign-ups", CreatedOn: time.Date(2024, 2, 20, 14, 0, 0, 0, time.UTC)},
		},
	}
	alex := Account{
		AccountID: "Zr2Tx", Email: "alex.chen@example.org", FirstName: "Alex", LastName: "Chen",
		CompanyName: "Chen Outdoor Supply", Phone: "+14155550100", State: "California", City: "San Francisco",
		Street: "500 Market St", ZipCode: "94105", NumberOfEmployees: "40", TimeFormat: "12h",
		CountryCodeID: "223", CountryCode: "US", IndustryTagID: "12", TimeZoneName: "America/Los_Angeles", TimeZoneOffset: "-08:00",
		FromFields: []FromField{
			{FromFieldID: "Aq1c", Email: "news@chen-outdoor.example.org", Name: "Chen Outdoor", IsActive: true, IsDefault: true,
				CreatedOn: time.Date(2019, 11, 5, 17, 30, 0, 0, time.UTC), DomainStatus: "confirmed"},
			{FromFieldID: "Aq1d", Email: "alex@chen-outdoor.example.org", Name: "Alex Chen", IsActive: true,
				CreatedOn: time.Date(2020, 1, 8, 10, 0, 0, 0, time.UTC)},
		},
		Campaigns: []Campaign{{CampaignID: "uS9q", Name: "trail_news", TechName: "trail_news", LanguageCode: "EN",
			Description: "Trail news", IsDefault: true, CreatedOn: time.Date(2019, 11, 5, 17, 35, 0, 0, time.UTC)}},
	}
	return []Account{DefaultAccount(), maria, alex}
}

// newAccount is the account a visitor types on the consent page: a name,
// an e-mail address, one "From" address and one campaign.
func newAccount(name, email, domain string, now time.Time) Account {
	first, last, _ := strings.Cut(strings.TrimSpace(name), " ")
	id := randomHex(3)
	return Account{
		AccountID: id, Domain: domain, Email: email, FirstName: first, LastName: strings.TrimSpace(last),
		TimeFormat: "24h", TimeZoneName: "UTC", TimeZoneOffset: "+00:00",
		FromFields: []FromField{{FromFieldID: "F" + id[:3], Email: email, Name: strings.TrimSpace(name),
			IsActive: true, IsDefault: true, CreatedOn: now.UTC().Truncate(time.Second)}},
		Campaigns: []Campaign{{CampaignID: "C" + id[:3], Name: "my_list", TechName: "my_list", LanguageCode: "EN",
			Description: "my_list", IsDefault: true, CreatedOn: now.UTC().Truncate(time.Second)}},
	}
}

// AddAccount adds a (deep-copied) account to the consent page, replacing the
// one with the same AccountID; an empty AccountID gets a random one. It
// returns the AccountID.
func (f *Fake) AddAccount(a Account) string {
	if a.AccountID == "" {
		a.AccountID = randomHex(3)
	}
	a = cloneAccount(a)
	a.Domain = normalizeDomain(a.Domain)
	f.mu.Lock()
	f.putAccountLocked(a)
	f.mu.Unlock()
	f.changed()
	return a.AccountID
}

// putAccountLocked adds or replaces a; f.mu must be held.
func (f *Fake) putAccountLocked(a Account) {
	if i, ok := f.indexLocked()[a.AccountID]; ok {
		f.accounts[i] = a
		return
	}
	f.accounts = append(f.accounts, a)
	f.accountIndex[a.AccountID] = len(f.accounts) - 1
}

// indexLocked returns the AccountID → position index, rebuilding it after removals
// (tests and benchmarks add thousands of accounts); f.mu must be held.
func (f *Fake) indexLocked() map[string]int {
	if f.accountIndex == nil {
		f.accountIndex = make(map[string]int, len(f.accounts))
		for i, a := range f.accounts {
			f.accountIndex[a.AccountID] = i
		}
	}
	return f.accountIndex
}

// RemoveAccount removes an account; its tokens stop working.
func (f *Fake) RemoveAccount(id string) {
	f.mu.Lock()
	f.accounts = slices.DeleteFunc(f.accounts, func(a Account) bool { return a.AccountID == id })
	f.accountIndex = nil
	f.mu.Unlock()
	f.changed()
}

// accountDomain is the MAX domain of a: its own Domain, else
// Options.MaxDomain ("" for a standard account).
func (f *Fake) accountDomain(a Account) string {
	if a.Domain != "" {
		return normalizeDomain(a.Domain)
	}
	return f.opts.MaxDomain
}

// accountsOfLocked returns the accounts of a MAX domain, or the standard
// ones for "" (all of them in single-domain mode); f.mu must be held.
func (f *Fake) accountsOfLocked(domain string) []Account {
	var out []Account
	for _, a := range f.accounts {
		if f.accountDomain(a) == domain {
			out = append(out, a)
		}
	}
	return out
}

// Accounts returns copies of the accounts, in consent-page order.
func (f *Fake) Accounts() []Account {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Account, len(f.accounts))
	for i, a := range f.accounts {
		out[i] = cloneAccount(a)
	}
	return out
}

// accountLocked returns the account with id; f.mu must be held.
func (f *Fake) accountLocked(id string) (Account, bool) {
	if i, ok := f.indexLocked()[id]; ok {
		return f.accounts[i], true
	}
	return Account{}, false
}

func cloneAccount(a Account) Account {
	a.FromFields = slices.Clone(a.FromFields)
	a.Campaigns = slices.Clone(a.Campaigns)
	return a
}
