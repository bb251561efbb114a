"""Analytics over the shop's own data: metrics, customer-base models, segments, backtests and reports."""
