package getresponse

import (
	"context"
	"net/url"
	"strconv"
)

// Account is the answer of GET /accounts, the "who am I" call.
type Account struct {
	AccountID         string             `json:"accountId"`
	Email             string             `json:"email"`
	FirstName         string             `json:"firstName"`
	LastName          string             `json:"lastName"`
	CompanyName       string             `json:"companyName"`
	Phone             string             `json:"phone"`
	State             string             `json:"state"`
	City              string             `json:"city"`
	Street            string             `json:"street"`
	ZipCode           string             `json:"zipCode"`
	NumberOfEmployees string             `json:"numberOfEmployees"`
	TimeFormat        string             `json:"timeFormat"`
	Href              string             `json:"href"`
	CountryCode       AccountCountryCode `json:"countryCode"`
	IndustryTag       AccountIndustryTag `json:"industryTag"`
	TimeZone          AccountTimeZone    `json:"timeZone"`
}

// AccountCountryCode is Account.countryCode.
type AccountCountryCode struct {
	CountryCodeID string `json:"countryCodeId"`
	CountryCode   string `json:"countryCode"`
}

// AccountIndustryTag is Account.industryTag.
type AccountIndustryTag struct {
	IndustryTagID string `json:"industryTagId"`
}

// AccountTimeZone is Account.timeZone.
type AccountTimeZone struct {
	Name   string `json:"name"`
	Offset string `json:"offset"`
}

// UnmarshalJSON reads numbers, booleans and null where strings are expected.
func (a *Account) UnmarshalJSON(data []byte) error {
	m, err := decodeObject(data)
	if err != nil {
		return err
	}
	*a = Account{}
	if err := fillStrings(m, map[string]*string{
		"accountId": &a.AccountID, "email": &a.Email, "firstName": &a.FirstName,
		"lastName": &a.LastName, "companyName": &a.CompanyName, "phone": &a.Phone,
		"state": &a.State, "city": &a.City, "street": &a.Street, "zipCode": &a.ZipCode,
		"numberOfEmployees": &a.NumberOfEmployees, "timeFormat": &a.TimeFormat, "href": &a.Href,
	}); err != nil {
		return err
	}
	if err := fillJSON(m, "countryCode", &a.CountryCode); err != nil {
		return err
	}
	if err := fillJSON(m, "industryTag", &a.IndustryTag); err != nil {
		return err
	}
	return fillJSON(m, "timeZone", &a.TimeZone)
}

// UnmarshalJSON reads numbers where strings are expected.
func (c *AccountCountryCode) UnmarshalJSON(data []byte) error {
	m, err := decodeObject(data)
	if err != nil {
		return err
	}
	*c = AccountCountryCode{}
	return fillStrings(m, map[string]*string{"countryCodeId": &c.CountryCodeID, "countryCode": &c.CountryCode})
}

// UnmarshalJSON reads a number where a string is expected.
func (t *AccountIndustryTag) UnmarshalJSON(data []byte) error {
	m, err := decodeObject(data)
	if err != nil {
		return err
	}
	*t = AccountIndustryTag{}
	return fillStrings(m, map[string]*string{"industryTagId": &t.IndustryTagID})
}

// UnmarshalJSON reads numbers where strings are expected.
func (z *AccountTimeZone) UnmarshalJSON(data []byte) error {
	m, err := decodeObject(data)
	if err != nil {
		return err
	}
	*z = AccountTimeZone{}
	return fillStrings(m, map[string]*string{"name": &z.Name, "offset": &z.Offset})
}

// FromField is a "From" address of GET /from-fields.
type FromField struct {
	FromFieldID    string          `json:"fromFieldId"`
	Href           string          `json:"href"`
	Email          string          `json:"email"`
	Name           string          `json:"name"`
	RewrittenEmail *string         `json:"rewrittenEmail"`
	IsActive       Bool            `json:"isActive"`
	IsDefault      Bool            `json:"isDefault"`
	CreatedOn      Time            `json:"createdOn"`
	Domain         FromFieldDomain `json:"domain"`
}

// FromFieldDomain is FromField.domain.
type FromFieldDomain struct {
	Status      string  `json:"status"`
	DKIMWarning *string `json:"DKIMWarning"`
}

// UnmarshalJSON reads numbers where strings are expected.
func (f *FromField) UnmarshalJSON(data []byte) error {
	m, err := decodeObject(data)
	if err != nil {
		return err
	}
	*f = FromField{}
	if err := fillStrings(m, map[string]*string{
		"fromFieldId": &f.FromFieldID, "href": &f.Href, "email": &f.Email, "name": &f.Name,
	}); err != nil {
		return err
	}
	if raw, ok := m["rewrittenEmail"]; ok {
		if f.RewrittenEmail, err = flexStringPtr(raw); err != nil {
			return err
		}
	}
	for name, dst := range map[string]any{
		"isActive": &f.IsActive, "isDefault": &f.IsDefault, "createdOn": &f.CreatedOn, "domain": &f.Domain,
	} {
		if err := fillJSON(m, name, dst); err != nil {
			return err
		}
	}
	return nil
}

// UnmarshalJSON accepts null for both members.
func (d *FromFieldDomain) UnmarshalJSON(data []byte) error {
	m, err := decodeObject(data)
	if err != nil {
		return err
	}
	*d = FromFieldDomain{}
	if err := fillStrings(m, map[string]*string{"status": &d.Status}); err != nil {
		return err
	}
	if raw, ok := m["DKIMWarning"]; ok {
		d.DKIMWarning, err = flexStringPtr(raw)
	}
	return err
}

// Campaign is a campaign (contact list) of GET /campaigns.
type Campaign struct {
	CampaignID   string `json:"campaignId"`
	Name         string `json:"name"`
	TechName     string `json:"techName"`
	LanguageCode string `json:"languageCode"`
	Href         string `json:"href"`
	Description  string `json:"description"`
	IsDefault    Bool   `json:"isDefault"`
	CreatedOn    Time   `json:"createdOn"`
}

// UnmarshalJSON reads numbers where strings are expected.
func (c *Campaign) UnmarshalJSON(data []byte) error {
	m, err := decodeObject(data)
	if err != nil {
		return err
	}
	*c = Campaign{}
	if err := fillStrings(m, map[string]*string{
		"campaignId": &c.CampaignID, "name": &c.Name, "techName": &c.TechName,
		"languageCode": &c.LanguageCode, "href": &c.Href, "description": &c.Description,
	}); err != nil {
		return err
	}
	if err := fillJSON(m, "isDefault", &c.IsDefault); err != nil {
		return err
	}
	return fillJSON(m, "createdOn", &c.CreatedOn)
}

// Account fetches the account the token belongs to (GET /accounts).
func (c *Client) Account(ctx context.Context, app App, accessToken string) (*Account, *Response, error) {
	var a Account
	resp, err := c.getJSON(ctx, app, accessToken, "/accounts", nil, &a)
	if err != nil {
		return nil, resp, err
	}
	return &a, resp, nil
}

// FromFields lists all "From" addresses (GET /from-fields), page by page.
func (c *Client) FromFields(ctx context.Context, app App, accessToken string) ([]FromField, *Response, error) {
	return getAll[FromField](ctx, c, app, accessToken, "/from-fields")
}

// Campaigns lists all campaigns (GET /campaigns), page by page.
func (c *Client) Campaigns(ctx context.Context, app App, accessToken string) ([]Campaign, *Response, error) {
	return getAll[Campaign](ctx, c, app, accessToken, "/campaigns")
}

// Paging limits of list calls.
const (
	maxPerPage = 1000 // GetResponse's maximum
	maxPages   = 50   // a safety stop: 50,000 items
)

// getAll follows the TotalPages header of a list; it returns the last
// Response, whose rate limit is the freshest.
func getAll[T any](ctx context.Context, c *Client, app App, accessToken, path string) ([]T, *Response, error) {
	var all []T
	var resp *Response
	for page := 1; page <= maxPages; page++ {
		q := url.Values{"page": {strconv.Itoa(page)}, "perPage": {strconv.Itoa(maxPerPage)}}
		var items []T
		var err error
		resp, err = c.getJSON(ctx, app, accessToken, path, q, &items)
		if err != nil {
			return nil, resp, err
		}
		all = append(all, items...)
		total, err := strconv.Atoi(resp.Header.Get("TotalPages"))
		if err != nil || page >= total || len(items) == 0 {
			break
		}
	}
	if all == nil {
		all = []T{}
	}
	return all, resp, nil
}
