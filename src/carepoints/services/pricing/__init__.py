"""Cost estimates (费用估算): each institution's price catalogue and packages, imported from CSV or
Excel, and the estimate of chosen items with the insurance self-pay part and cheaper equivalents."""
