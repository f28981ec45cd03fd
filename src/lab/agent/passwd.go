package agent

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Comment is the GECOS field of every user the lab makes. It is how
// SweepAll finds them after a crash, and how the agent refuses to touch a
// user it did not make (a request for "root" must not gain a key).
const Comment = "bbr-lab"

// passwdFile is read directly rather than through os/user so that the
// GECOS comment is available and no NSS module is involved.
const passwdFile = "/etc/passwd"

type account struct {
	Name    string
	UID     int
	GID     int
	Comment string
	Home    string
}

func readPasswd() (map[string]account, error) {
	f, err := os.Open(passwdFile)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", passwdFile, err)
	}
	defer f.Close()
	out := map[string]account{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 {
			continue
		}
		uid, err1 := strconv.Atoi(fields[2])
		gid, err2 := strconv.Atoi(fields[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out[fields[0]] = account{Name: fields[0], UID: uid, GID: gid, Comment: fields[4], Home: fields[5]}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", passwdFile, err)
	}
	return out, nil
}

// labUsers lists the accounts the lab made.
func labUsers() ([]account, error) {
	all, err := readPasswd()
	if err != nil {
		return nil, err
	}
	var out []account
	for _, a := range all {
		if a.Comment == Comment {
			out = append(out, a)
		}
	}
	return out, nil
}
