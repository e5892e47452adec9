"""Queue calls (候诊提醒): staff or the HIS call the next checked-in patient of a session;
patients see the current number, how many are ahead and an estimate of the wait."""
