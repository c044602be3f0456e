package getresponsetest

import (
	"slices"
	"time"
)

// Account is a GetResponse account the consent page offers, with its "From"
// addresses and campaigns.
type Account struct {
	AccountID         string
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

// AddAccount adds a (deep-copied) account to the consent page, replacing the
// one with the same AccountID; an empty AccountID gets a random one. It
// returns the AccountID.
func (f *Fake) AddAccount(a Account) string {
	if a.AccountID == "" {
		a.AccountID = randomHex(3)
	}
	a = cloneAccount(a)
	f.mu.Lock()
	defer f.mu.Unlock()
	if i, ok := f.indexLocked()[a.AccountID]; ok {
		f.accounts[i] = a
		return a.AccountID
	}
	f.accounts = append(f.accounts, a)
	f.accountIndex[a.AccountID] = len(f.accounts) - 1
	return a.AccountID
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
	defer f.mu.Unlock()
	f.accounts = slices.DeleteFunc(f.accounts, func(a Account) bool { return a.AccountID == id })
	f.accountIndex = nil
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
