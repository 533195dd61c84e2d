"""Contract terms and payoffs: each product names the fixings it needs and maps them to cash flows."""
