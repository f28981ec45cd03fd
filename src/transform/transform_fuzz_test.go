package transform

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/bbr-release/bbr/src/artifact"
)

// FuzzDecode feeds arbitrary stored bytes to the decoder as each
// transform sequence bbr writes: it must fail or give bytes, never panic
// or allocate what a header claims. The seeds are real encodings.
func FuzzDecode(f *testing.F) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		f.Fatal(err)
	}
	rs, err := ParseRecipients([]string{id.Recipient().String()})
	if err != nil {
		f.Fatal(err)
	}
	for _, o := range []Options{{Compress: true}, {Recipients: rs}, {Compress: true, Recipients: rs}} {
		var buf bytes.Buffer
		if _, err := o.encodeAll(&buf, strings.NewReader("a tar stream, or anything else")); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes(), uint8(len(o.transforms())-1+len(o.Recipients)))
	}
	sequences := [][]string{{artifact.Zstd}, {artifact.Age}, {artifact.Zstd, artifact.Age}}
	f.Fuzz(func(t *testing.T, stored []byte, which uint8) {
		e := artifact.Encoding{Transforms: sequences[int(which)%len(sequences)]}
		r, closeAll, err := decoder(bytes.NewReader(stored), "f", e, []age.Identity{id})
		if err != nil {
			return
		}
		defer closeAll()
		_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<20))
	})
}

// FuzzParseRecipients: any input is refused or gives recipients with a
// name, and never echoes a private key.
func FuzzParseRecipients(f *testing.F) {
	f.Add("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN bbr")
	f.Add("# keys\n\nAGE-SECRET-KEY-1QQQQ\n")
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := ParseRecipients([]string{in})
		if err != nil {
			if bytes.Contains([]byte(err.Error()), []byte("AGE-SECRET-KEY-")) {
				t.Fatalf("error echoes a private key: %v", err)
			}
			return
		}
		for _, r := range rs {
			if r.Name == "" || r.Recipient == nil {
				t.Fatalf("recipient without a name: %+v", r)
			}
		}
	})
}
