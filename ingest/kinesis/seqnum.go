package kinesis

// CompareSeq compares two Kinesis sequence numbers, decimal strings of up
// to 129 digits, as the integers they are: by length, then digit by digit
// (never as float64, which loses them past 2^53). A leading zero is not
// part of any sequence number Kinesis issues; validSeq rejects it.
func CompareSeq(a, b string) int {
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// validSeq reports whether s has the shape of a sequence number: 1 to 129
// decimal digits without a leading zero (or "0").
func validSeq(s string) bool {
	if len(s) == 0 || len(s) > 129 || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
