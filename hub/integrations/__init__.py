"""Integrations with the tools of a gameday: Vegeta, Dropwizard Metrics, Spinnaker and Chaos Toolkit."""
