package grconnect_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	grconnect "github.com/grconnect/grconnect/sdk/go"
)

func ExampleClient_Token() {
	ctx := context.Background()
	gc, err := grconnect.New("https://grconnect.example.com", os.Getenv("GRCONNECT_API_KEY"))
	if err != nil {
		panic(err)
	}
	tok, err := gc.Token(ctx, "con_…")
	switch grconnect.CodeOf(err) {
	case "":
	case grconnect.CodeNeedsReconnect:
		link, _ := gc.CreateConnectSession(ctx, grconnect.ConnectSessionParams{ConnectionID: "con_…"})
		fmt.Println("send the customer to", link.URL)
		return
	default:
		panic(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.getresponse.com/v3/from-fields", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	_, _ = http.DefaultClient.Do(req)
}

func ExampleVerifyWebhook() {
	http.HandleFunc("/hooks/grconnect", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := grconnect.VerifyWebhook(os.Getenv("GRCONNECT_WEBHOOK_SECRET"), r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// Act on r.Header.Get("webhook-id") once.
		w.WriteHeader(http.StatusNoContent)
	})
}
