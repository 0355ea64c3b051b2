package wire

// validJSON reports whether data is exactly one JSON value, as
// encoding/json.Valid does (FuzzValidJSON checks they agree), at several
// times its speed: intake checks every payload, and encoding/json's
// general-purpose scanner made that check most of intake's cost.
// Like json.Valid it does not check UTF-8; IsJSON does that separately.
func validJSON(data []byte) bool {
	// Open objects and arrays, innermost last. Device payloads nest a few
	// levels, which the array holds without allocating.
	var stackBuf [32]byte
	stack := stackBuf[:0]
	i := skipSpace(data, 0)
	needValue := true
	for {
		if needValue {
			if i >= len(data) {
				return false
			}
			ok := true
			switch c := data[i]; c {
			case '{', '[':
				if len(stack) >= maxDepth {
					return false
				}
				i = skipSpace(data, i+1)
				closer := byte('}')
				if c == '[' {
					closer = ']'
				}
				if i < len(data) && data[i] == closer {
					i++
					break
				}
				stack = append(stack, c)
				if c == '{' {
					if i, ok = scanKey(data, i); !ok {
						return false
					}
				}
				continue
			case '"':
				i, ok = scanString(data, i)
			case 't':
				i, ok = scanLiteral(data, i, "true")
			case 'f':
				i, ok = scanLiteral(data, i, "false")
			case 'n':
				i, ok = scanLiteral(data, i, "null")
			default:
				i, ok = scanNumber(data, i)
			}
			if !ok {
				return false
			}
			needValue = false
		}
		i = skipSpace(data, i)
		if len(stack) == 0 {
			return i == len(data)
		}
		if i >= len(data) {
			return false
		}
		top := stack[len(stack)-1]
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
			if top == '{' {
				var ok bool
				if i, ok = scanKey(data, i); !ok {
					return false
				}
			}
			needValue = true
		case '}':
			if top != '{' {
				return false
			}
			stack = stack[:len(stack)-1]
			i++
		case ']':
			if top != '[' {
				return false
			}
			stack = stack[:len(stack)-1]
			i++
		default:
			return false
		}
	}
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanKey scans `"key"` and the colon after it, and the white space after
// that.
func scanKey(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return i, false
	}
	i, ok := scanString(data, i)
	if !ok {
		return i, false
	}
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return i, false
	}
	return skipSpace(data, i+1), true
}

// scanString scans a string starting at its opening quote.
func scanString(data []byte, i int) (int, bool) {
	i++
	for {
		for i < len(data) && data[i] != '"' && data[i] != '\\' && data[i] >= 0x20 {
			i++
		}
		if i >= len(data) {
			return i, false
		}
		switch data[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(data) {
				return i, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) {
					return i, false
				}
				for _, h := range data[i+2 : i+6] {
					if !isHex(h) {
						return i, false
					}
				}
				i += 6
			default:
				return i, false
			}
		default:
			// A control character, which JSON wants escaped.
			return i, false
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(data []byte, i int) (int, bool) {
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return i, false
	case data[i] == '0':
		i++
	case isDigit(data[i]):
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			return i, false
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return i, false
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	return i, true
}

func scanLiteral(data []byte, i int, lit string) (int, bool) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}
