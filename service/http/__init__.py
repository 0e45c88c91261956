"""HTTP plumbing shared by every route: the error middleware and table, authentication, body
decoding, the rate limiter and the access log."""
