package main

import (
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "github.com/twmb/franz-go/pkg/sasl/scram"
)

func main() {}
