package getresponse_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/getresponse"
)

func TestBool(t *testing.T) {
	tests := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{`"true"`, true, false},
		{`"false"`, false, false},
		{`true`, true, false},
		{`false`, false, false},
		{`"TRUE"`, true, false},
		{`"1"`, true, false},
		{`0`, false, false},
		{`null`, false, false},
		{`""`, false, false},
		{`"maybe"`, false, true},
		{`{}`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var b getresponse.Bool
			err := json.Unmarshal([]byte(tt.in), &b)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err == nil && bool(b) != tt.want {
				t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, b, tt.want)
			}
		})
	}
	out, err := json.Marshal(struct{ B getresponse.Bool }{true})
	if err != nil || string(out) != `{"B":true}` {
		t.Errorf("Marshal = %s, %v; want a JSON boolean", out, err)
	}
}

func TestTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{`"2017-03-13T19:32:52+0000"`, time.Date(2017, 3, 13, 19, 32, 52, 0, time.UTC), false},
		{`"2014-02-12T15:19:21+0200"`, time.Date(2014, 2, 12, 13, 19, 21, 0, time.UTC), false},
		{`"2017-03-13T19:32:52Z"`, time.Date(2017, 3, 13, 19, 32, 52, 0, time.UTC), false},
		{`"2017-03-13T19:32:52+01:00"`, time.Date(2017, 3, 13, 18, 32, 52, 0, time.UTC), false},
		{`"2017-03-13T19:32:52.123+00:00"`, time.Date(2017, 3, 13, 19, 32, 52, 123e6, time.UTC), false},
		{`"2017-03-13 19:32:52"`, time.Date(2017, 3, 13, 19, 32, 52, 0, time.UTC), false},
		{`"2017-03-13"`, time.Date(2017, 3, 13, 0, 0, 0, 0, time.UTC), false},
		{`null`, time.Time{}, false},
		{`""`, time.Time{}, false},
		{`"yesterday"`, time.Time{}, true},
		{`12345`, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got getresponse.Time
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err == nil && !got.Equal(tt.want) {
				t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, got.Time, tt.want)
			}
		})
	}
	for in, want := range map[getresponse.Time]string{
		{}: "null",
		{Time: time.Date(2017, 3, 13, 19, 32, 52, 0, time.UTC)}: `"2017-03-13T19:32:52Z"`,
	} {
		if out, err := json.Marshal(in); err != nil || string(out) != want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", in.Time, out, err, want)
		}
	}
}

// The official example bodies of getresponse-api.md and the OpenAPI document.
const (
	exampleAccount = `{"accountId":"VfEy1","email":"john.smith@test.com","countryCode":{"countryCodeId":"175","countryCode":"PL"},` +
		`"industryTag":{"industryTagId":"1"},"timeZone":{"name":"Europe/Warsaw","offset":"+01:00"},` +
		`"href":"https://api.getresponse.com/v3/accounts","firstName":"John","lastName":"Smith","companyName":"MyBigCompany",` +
		`"phone":"+00155555555","state":"Oklahoma","city":"Alderson","street":"Sunset blv.","zipCode":"81-611",` +
		`"numberOfEmployees":"500","timeFormat":"24h"}`
	exampleFromFields = `[{"fromFieldId":"TTzW","href":"https://api.getresponse.com/v3/from-fields/TTzW","email":"jsmith@example.com",` +
		`"rewrittenEmail":null,"name":"John Smith","isActive":"true","isDefault":"true","createdOn":"2017-03-13T19:32:52+0000",` +
		`"domain":{"status":"confirmed","DKIMWarning":null}}]`
	exampleCampaigns = `[{"description":"my_campaign","campaignId":"V3J","name":"my_campaign","techName":"my_campaign",` +
		`"languageCode":"EN","isDefault":"true","createdOn":"2014-02-12T15:19:21+0000","href":"https://api.getresponse.com/v3/campaigns/V3J"}]`
)

func TestDecodeExampleBodies(t *testing.T) {
	var a getresponse.Account
	if err := json.Unmarshal([]byte(exampleAccount), &a); err != nil {
		t.Fatal(err)
	}
	checkExampleAccount(t, &a)

	var ff []getresponse.FromField
	if err := json.Unmarshal([]byte(exampleFromFields), &ff); err != nil {
		t.Fatal(err)
	}
	checkExampleFromField(t, ff)

	var cs []getresponse.Campaign
	if err := json.Unmarshal([]byte(exampleCampaigns), &cs); err != nil {
		t.Fatal(err)
	}
	checkExampleCampaign(t, cs)
}

func checkExampleAccount(t *testing.T, a *getresponse.Account) {
	t.Helper()
	want := getresponse.Account{
		AccountID: "VfEy1", Email: "john.smith@test.com", FirstName: "John", LastName: "Smith",
		CompanyName: "MyBigCompany", Phone: "+00155555555", State: "Oklahoma", City: "Alderson",
		Street: "Sunset blv.", ZipCode: "81-611", NumberOfEmployees: "500", TimeFormat: "24h",
		CountryCode: getresponse.AccountCountryCode{CountryCodeID: "175", CountryCode: "PL"},
		IndustryTag: getresponse.AccountIndustryTag{IndustryTagID: "1"},
		TimeZone:    getresponse.AccountTimeZone{Name: "Europe/Warsaw", Offset: "+01:00"},
	}
	got := *a
	got.Href = "" // points at whichever server answered
	if got != want {
		t.Errorf("account = %+v\nwant      %+v", got, want)
	}
	if a.Href == "" {
		t.Error("account href is empty")
	}
}

func checkExampleFromField(t *testing.T, ff []getresponse.FromField) {
	t.Helper()
	if len(ff) != 1 {
		t.Fatalf("got %d from-fields, want 1", len(ff))
	}
	f := ff[0]
	if f.FromFieldID != "TTzW" || f.Email != "jsmith@example.com" || f.Name != "John Smith" ||
		f.RewrittenEmail != nil || !bool(f.IsActive) || !bool(f.IsDefault) ||
		f.Domain.Status != "confirmed" || f.Domain.DKIMWarning != nil || f.Href == "" {
		t.Errorf("from-field = %+v", f)
	}
	if want := time.Date(2017, 3, 13, 19, 32, 52, 0, time.UTC); !f.CreatedOn.Equal(want) {
		t.Errorf("createdOn = %v, want %v", f.CreatedOn.Time, want)
	}
}

func checkExampleCampaign(t *testing.T, cs []getresponse.Campaign) {
	t.Helper()
	if len(cs) != 1 {
		t.Fatalf("got %d campaigns, want 1", len(cs))
	}
	c := cs[0]
	if c.CampaignID != "V3J" || c.Name != "my_campaign" || c.TechName != "my_campaign" || c.LanguageCode != "EN" ||
		c.Description != "my_campaign" || !bool(c.IsDefault) || c.Href == "" {
		t.Errorf("campaign = %+v", c)
	}
	if want := time.Date(2014, 2, 12, 15, 19, 21, 0, time.UTC); !c.CreatedOn.Equal(want) {
		t.Errorf("createdOn = %v, want %v", c.CreatedOn.Time, want)
	}
}

func TestDecodeLenient(t *testing.T) {
	tests := []struct {
		name, body string
		check      func(t *testing.T, a getresponse.Account)
		wantErr    bool
	}{
		{
			name: "numbers and nulls where strings are expected",
			body: `{"accountId":123,"phone":null,"zipCode":81611,"numberOfEmployees":500,` +
				`"countryCode":{"countryCodeId":175,"countryCode":"PL"},"industryTag":{"industryTagId":1},"timeZone":null,"extra":[1,2]}`,
			check: func(t *testing.T, a getresponse.Account) {
				if a.AccountID != "123" || a.Phone != "" || a.ZipCode != "81611" || a.NumberOfEmployees != "500" ||
					a.CountryCode.CountryCodeID != "175" || a.IndustryTag.IndustryTagID != "1" || a.TimeZone.Name != "" {
					t.Errorf("account = %+v", a)
				}
			},
		},
		{
			name:  "booleans as strings",
			body:  `{"accountId":"x","firstName":true}`,
			check: func(t *testing.T, a getresponse.Account) { assertEqual(t, a.FirstName, "true") },
		},
		{name: "object where a string is expected", body: `{"accountId":{"a":1}}`, wantErr: true},
		{name: "not an object", body: `[]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a getresponse.Account
			err := json.Unmarshal([]byte(tt.body), &a)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, a)
			}
		})
	}

	var ff getresponse.FromField
	body := `{"fromFieldId":7,"rewrittenEmail":"r@example.com","isActive":true,"isDefault":"false","createdOn":null,"domain":{"status":null,"DKIMWarning":"at_risk"}}`
	if err := json.Unmarshal([]byte(body), &ff); err != nil {
		t.Fatal(err)
	}
	if ff.FromFieldID != "7" || ff.RewrittenEmail == nil || *ff.RewrittenEmail != "r@example.com" || !bool(ff.IsActive) ||
		bool(ff.IsDefault) || !ff.CreatedOn.IsZero() || ff.Domain.Status != "" || ff.Domain.DKIMWarning == nil || *ff.Domain.DKIMWarning != "at_risk" {
		t.Errorf("from-field = %+v", ff)
	}
}

func assertEqual[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}
