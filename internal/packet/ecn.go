package packet

import "encoding/binary"

// MarkCE marks an ECN-capable IP packet Congestion Experienced in place
// and says whether it was ECN-capable; the IPv4 header checksum is
// updated (RFC 1624).
func MarkCE(p []byte) bool {
	switch {
	case len(p) >= 20 && p[0]>>4 == 4:
		if p[1]&3 == 0 {
			return false
		}
		old := binary.BigEndian.Uint16(p[0:2])
		p[1] |= 3
		sum := uint64(^binary.BigEndian.Uint16(p[10:12])) + uint64(^old) + uint64(binary.BigEndian.Uint16(p[0:2]))
		binary.BigEndian.PutUint16(p[10:12], ^fold(sum))
		return true
	case len(p) >= 40 && p[0]>>4 == 6:
		if p[1]>>4&3 == 0 { // the traffic class's low bits
			return false
		}
		p[1] |= 3 << 4
		return true
	}
	return false
}
