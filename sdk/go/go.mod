module github.com/grconnect/grconnect/sdk/go

go 1.23
