"""Fees, invoices and payments (SPEC §3 J2): what a member owes, how it is paid, and crediting it exactly once."""
