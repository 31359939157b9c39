"""Pricing of the platform (SPEC §7): one module, :mod:`portal.pricing.tariff`, computes it."""
