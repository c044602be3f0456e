package tokens

import (
	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// AppClient returns what the GetResponse client needs of app itself (its
// credential checks, its probe), with its secret opened.
func AppClient(box *secrets.Box, app *models.App, redirectURL string) (getresponse.App, error) {
	secret, err := openSecret(box, app)
	if err != nil {
		return getresponse.App{}, err
	}
	return getresponse.App{
		ClientID: app.ClientID, ClientSecret: secret, AuthURL: app.AuthURL, APIURL: app.APIURL,
		XDomain: app.MaxDomain, RedirectURL: redirectURL,
	}, nil
}

// ClientFor returns what the GetResponse client needs to act for one connection
// of app: the app's credentials and URLs with the connection's MAX domain
// (X-Domain on every token and API call, and its authorize page) and its
// X-Parent-Login. Every code exchange, refresh and test call goes through it.
func ClientFor(box *secrets.Box, app *models.App, id models.Identity, redirectURL string) (getresponse.App, error) {
	secret, err := openSecret(box, app)
	if err != nil {
		return getresponse.App{}, err
	}
	ga := APIClientFor(app, id)
	ga.ClientID, ga.ClientSecret, ga.AuthURL, ga.RedirectURL = app.ClientID, secret, app.AuthURLFor(id.MaxDomain), redirectURL
	return ga, nil
}

// APIClientFor is ClientFor without the client secret, which API calls do not
// need: it stays sealed.
func APIClientFor(app *models.App, id models.Identity) getresponse.App {
	return getresponse.App{APIURL: app.APIURL, XDomain: id.MaxDomain, ParentLogin: id.ParentLogin}
}

func openSecret(box *secrets.Box, app *models.App) (string, error) {
	return box.Open(app.ClientSecretEnc, secrets.AAD("app", app.ID, "client_secret"))
}
