"""Helpers the tests share: servers, fakes, harnesses, real faults. Not tests themselves."""
