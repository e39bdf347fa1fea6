module github.com/courier-go/courier

go 1.26
