"""Reports (检查检验报告): diagnostic reports and their results pushed by the HIS / LIS."""
