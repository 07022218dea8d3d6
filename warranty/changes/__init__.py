"""Changes staff (or Stripe's refunds) make to a contract: cancellation, returns, transfer, serial
numbers."""
