package secsock

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unicode"

	"go.nanomsg.org/mangos/v3"
)

// Key files. The formats are text, line based and versioned by their first
// line; README.md ("Key files") documents them. Keys are written in the
// 40-character Z85 of ZeroMQ, so keys made by zmq_curve_keypair or
// curve_keygen can be pasted in.
//
// A secret key file (mode 0600; group or others may not read it):
//
//	# secsock secret key v1 (keep private)
//	public-key: rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7
//	secret-key: JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6
//
// A public key file, whose key line is also a valid authorized-keys line
// (so `cat alice.pub >> authorized_keys` works):
//
//	# secsock public key v1
//	rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7 alice
//
// An authorized-keys file: one public key per line, each optionally
// followed by a name; blank lines and lines starting with # are ignored.

const (
	secretKeyHeader     = "# secsock secret key v1"
	publicKeyHeader     = "# secsock public key v1"
	authorizedKeyHeader = "# secsock authorized keys v1"

	secretKeyFilePrefix = "# secsock secret key "
	publicKeyFilePrefix = "# secsock public key "

	maxKeyFileSize = 64 << 10 // secret and public key files
	maxLineLength  = 4 << 10  // any line of any of these files
)

// FileError is a problem with a key file or an authorized-keys file. It
// names the file and, when it is about one line, the line number; it never
// quotes the file's contents, which may hold a secret. Err, if set, is a
// sentinel such as ErrKeyFilePermissions, ErrBadKey, ErrWeakKey or
// fs.ErrExist, for errors.Is.
type FileError struct {
	Path string // empty when parsing from a reader or bytes
	Line int    // 1-based; 0 when the problem is not on one line
	Msg  string
	Err  error
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("secsock: ")
	if e.Path != "" {
		b.WriteString(e.Path)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }

func lineError(line int, err error, format string, args ...any) *FileError {
	return &FileError{Line: line, Msg: fmt.Sprintf(format, args...), Err: err}
}

// withPath returns err with the file's path filled in, for FileErrors.
func withPath(path string, err error) error {
	var fe *FileError
	if errors.As(err, &fe) && fe.Path == "" {
		c := *fe
		c.Path = path
		return &c
	}
	return err
}

// keyReason describes why key text did not parse, without quoting it.
func keyReason(err error) string {
	switch {
	case errors.Is(err, ErrWeakKey):
		return "weak (small-order) public key, refused"
	case errors.Is(err, errNotCanonical):
		return notCanonicalText
	}
	return "not a key (want the 40-character Z85 text of a curve25519 key)"
}

// lines calls f for each line of r with its 1-based number, the line
// without its end of line and surrounding white space. It stops at the
// first error.
func lines(r io.Reader, f func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLineLength)
	n := 0
	for sc.Scan() {
		n++
		if err := f(n, strings.TrimSpace(sc.Text())); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return lineError(n+1, nil, "line longer than %d bytes", maxLineLength)
		}
		return err
	}
	return nil
}

// checkHeader reports an error for a line that starts like a secsock
// header of another kind or version than want.
func checkHeader(n int, line, want string) error {
	switch {
	case line == want || strings.HasPrefix(line, want+" "):
		return nil
	case strings.HasPrefix(line, secretKeyFilePrefix) && want != secretKeyHeader:
		return lineError(n, nil, "this is a secret key file, not a public key; keep it private and use its public key (secsock pubkey FILE)")
	case strings.HasPrefix(line, publicKeyFilePrefix) && want == secretKeyHeader:
		return lineError(n, nil, "this is a public key file, not a secret key file")
	case want == secretKeyHeader && strings.HasPrefix(line, secretKeyFilePrefix),
		want != secretKeyHeader && strings.HasPrefix(line, publicKeyFilePrefix):
		return lineError(n, nil, "unsupported key file version (this build reads v1)")
	}
	return nil
}

// FormatSecretKeyFile returns the contents of a secret key file for k.
// The result holds the secret: write it only to a private file
// (WriteSecretKeyFile does) and clear it after use.
func FormatSecretKeyFile(k SecretKey) []byte {
	var b bytes.Buffer
	b.WriteString(secretKeyHeader + " (keep private)\n")
	b.WriteString("public-key: " + k.Public().String() + "\n")
	b.WriteString("secret-key: " + k.Reveal() + "\n")
	return b.Bytes()
}

// ParseSecretKeyFile parses the contents of a secret key file. The first
// line must be the header "# secsock secret key v1"; then come a
// "secret-key:" line and, optionally, a "public-key:" line, which must
// match the secret. Blank lines and # comments are ignored. Errors never
// include the file's contents.
func ParseSecretKeyFile(data []byte) (SecretKey, error) {
	var (
		sk, pubLine       int
		key               SecretKey
		pub               PublicKey
		sawHeader         bool
		secretTxt, pubTxt string
	)
	err := lines(bytes.NewReader(data), func(n int, line string) error {
		if !sawHeader {
			if line == "" {
				return nil
			}
			if err := checkHeader(n, line, secretKeyHeader); err != nil {
				return err
			}
			if line != secretKeyHeader && !strings.HasPrefix(line, secretKeyHeader+" ") {
				return lineError(n, nil, "not a secsock secret key file: the first line must be %q", secretKeyHeader)
			}
			sawHeader = true
			return nil
		}
		if line == "" || line[0] == '#' {
			return nil
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return lineError(n, nil, `expected "secret-key: KEY" or "public-key: KEY"`)
		}
		value = strings.TrimSpace(value)
		switch strings.TrimSpace(name) {
		case "secret-key":
			if sk != 0 {
				return lineError(n, nil, "second secret-key line (first on line %d)", sk)
			}
			sk, secretTxt = n, value
		case "public-key":
			if pubLine != 0 {
				return lineError(n, nil, "second public-key line (first on line %d)", pubLine)
			}
			pubLine, pubTxt = n, value
		default:
			return lineError(n, nil, `unknown field: a secret key file has only "secret-key:" and "public-key:" lines`)
		}
		return nil
	})
	if err != nil {
		return SecretKey{}, err
	}
	if !sawHeader {
		return SecretKey{}, lineError(0, nil, "empty file: not a secsock secret key file")
	}
	if sk == 0 {
		return SecretKey{}, lineError(0, ErrBadKey, "no secret-key line")
	}
	if key, err = ParseSecretKey(secretTxt); err != nil {
		return SecretKey{}, lineError(sk, ErrBadKey, "secret-key: not a key (want the 40-character Z85 text of a curve25519 secret key, not all zeros)")
	}
	if pubLine != 0 {
		if pub, err = ParsePublicKey(pubTxt); err != nil {
			return SecretKey{}, lineError(pubLine, ErrBadKey, "public-key: %s", keyReason(err))
		}
		if pub != key.Public() {
			return SecretKey{}, lineError(pubLine, ErrBadKey, "public-key does not match the secret key (the file was damaged or edited)")
		}
	}
	return key, nil
}

// WriteSecretKeyFile writes k to a new secret key file at path with mode
// 0600. It never overwrites: if path exists it fails with an error
// matching fs.ErrExist. The file appears whole or not at all (it is
// written to a temporary file in the same directory, synced, then linked
// to path).
func WriteSecretKeyFile(path string, k SecretKey) error {
	if k.IsZero() {
		return &FileError{Path: path, Msg: "no key to write", Err: ErrNoKey}
	}
	data := FormatSecretKeyFile(k)
	defer clear(data)
	return writeNewFile(path, data, 0o600)
}

// LoadSecretKeyFile reads a secret key file. Like ssh, it refuses a file
// that group or others can read or write (ErrKeyFilePermissions; the fix
// is chmod 600). It checks that the stored public key matches the secret.
func LoadSecretKeyFile(path string) (SecretKey, error) {
	data, err := readPrivateFile(path, "secret key file")
	defer clear(data)
	if err != nil {
		return SecretKey{}, err
	}
	k, err := ParseSecretKeyFile(data)
	return k, withPath(path, err)
}

// readPrivateFile reads a file that holds a secret (what names it in
// errors), refusing one that is not regular or that group or others can
// read or write.
func readPrivateFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secsock: %s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secsock: %s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &FileError{Path: path, Msg: "not a regular file"}
	}
	data, err := readLimited(f, path)
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		public := bytes.HasPrefix(bytes.TrimSpace(data), []byte(publicKeyFilePrefix))
		clear(data)
		if public {
			// Public key files are meant to be readable: say what it is.
			return nil, &FileError{Path: path, Line: 1, Msg: "this is a public key file, not a " + what}
		}
		return nil, &FileError{Path: path, Err: ErrKeyFilePermissions,
			Msg: fmt.Sprintf("%s permissions %04o are too open: group or others can access it (fix: chmod 600 %s)", what, perm, path)}
	}
	return data, nil
}

// FormatPublicKeyFile returns the contents of a public key file for k
// with an optional name (one line, no control characters).
func FormatPublicKeyFile(k PublicKey, name string) []byte {
	return []byte(publicKeyHeader + "\n" + formatKeyLine(AuthorizedKey{Key: k, Name: name}))
}

// ParsePublicKeyFile parses the contents of a public key file: an
// optional "# secsock public key v1" header and exactly one key line (key,
// then an optional name). A bare key as made by ZeroMQ (40 Z85
// characters), hex or base64 is accepted too.
func ParsePublicKeyFile(data []byte) (AuthorizedKey, error) {
	aks, err := ParseAuthorizedKeys(bytes.NewReader(data))
	if err != nil {
		return AuthorizedKey{}, err
	}
	switch len(aks) {
	case 0:
		return AuthorizedKey{}, lineError(0, ErrBadKey, "no public key in file")
	case 1:
		return aks[0], nil
	}
	return AuthorizedKey{}, lineError(0, ErrBadKey, "%d keys in a public key file (want one; is it an authorized keys file?)", len(aks))
}

// WritePublicKeyFile writes k (and an optional name) to a new public key
// file at path with mode 0644. Like WriteSecretKeyFile it is atomic and
// never overwrites.
func WritePublicKeyFile(path string, k PublicKey, name string) error {
	if err := checkName(name); err != nil {
		return &FileError{Path: path, Msg: err.Error()}
	}
	if err := checkPublicKey(k); err != nil {
		sentinel := ErrBadKey
		if errors.Is(err, ErrWeakKey) {
			sentinel = ErrWeakKey
		}
		return &FileError{Path: path, Msg: keyReason(err), Err: sentinel}
	}
	return writeNewFile(path, FormatPublicKeyFile(k, name), 0o644)
}

// LoadPublicKeyFile reads a public key file (see ParsePublicKeyFile).
func LoadPublicKeyFile(path string) (PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return PublicKey{}, fmt.Errorf("secsock: public key file: %w", err)
	}
	defer f.Close()
	data, err := readLimited(f, path)
	if err != nil {
		return PublicKey{}, err
	}
	ak, err := ParsePublicKeyFile(data)
	return ak.Key, withPath(path, err)
}

// AuthorizedKey is one entry of an authorized-keys file: a client's
// public key and the name written after it (empty if none).
type AuthorizedKey struct {
	Key  PublicKey
	Name string
}

// AuthorizedKeys is the contents of an authorized-keys file, in file
// order.
type AuthorizedKeys []AuthorizedKey

// Keys returns the public keys, for OptionAuthorizedKeys. It never
// returns nil: an empty file means "no client is authorized".
func (a AuthorizedKeys) Keys() []PublicKey {
	ks := make([]PublicKey, 0, len(a))
	for _, e := range a {
		ks = append(ks, e.Key)
	}
	return ks
}

// Name returns the name given to k, and whether k is in the list.
func (a AuthorizedKeys) Name(k PublicKey) (string, bool) {
	for _, e := range a {
		if e.Key == k {
			return e.Name, true
		}
	}
	return "", false
}

// ParseAuthorizedKeys parses an authorized-keys file: one public key per
// line (40-character Z85, or 64 hex digits or base64), optionally followed
// by white space and a name (a leading "#" before the name is allowed and
// dropped). Blank lines and lines starting with # are ignored, so public
// key files can be concatenated into one. Only the canonical encoding of a
// key is accepted (see ParsePublicKey) and a key listed twice is an error,
// so that deleting one line always revokes a key: another encoding of a
// listed key is refused, never taken for a second key. Errors name the
// line and never quote it.
func ParseAuthorizedKeys(r io.Reader) (AuthorizedKeys, error) {
	out := AuthorizedKeys{}
	seen := map[PublicKey]int{}
	err := lines(r, func(n int, line string) error {
		if line == "" {
			return nil
		}
		if line[0] == '#' {
			return checkHeader(n, line, publicKeyHeader)
		}
		if strings.HasPrefix(line, "secret-key") {
			return lineError(n, nil, "a secret key does not belong here (this file lists public keys; the line is not shown)")
		}
		keyText := line
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			keyText = line[:i]
		}
		k, err := ParsePublicKey(keyText)
		if err != nil {
			return lineError(n, err, "%s", keyReason(err))
		}
		name := strings.TrimSpace(line[len(keyText):])
		if name != "" && name[0] == '#' {
			name = strings.TrimSpace(name[1:])
		}
		if err := checkName(name); err != nil {
			return lineError(n, nil, "%v", err)
		}
		if first, dup := seen[k]; dup {
			return lineError(n, nil, "key already listed on line %d (remove one, so that deleting a line revokes the key)", first)
		}
		seen[k] = n
		out = append(out, AuthorizedKey{Key: k, Name: name})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FormatAuthorizedKeys returns an authorized-keys file listing a.
func FormatAuthorizedKeys(a AuthorizedKeys) []byte {
	var b strings.Builder
	b.WriteString(authorizedKeyHeader + "\n# one client public key per line, then an optional name\n")
	for _, e := range a {
		b.WriteString(formatKeyLine(e))
	}
	return []byte(b.String())
}

func formatKeyLine(e AuthorizedKey) string {
	switch {
	case e.Name == "":
		return e.Key.String() + "\n"
	case e.Name[0] == '#':
		return e.Key.String() + " # " + e.Name + "\n"
	}
	return e.Key.String() + " " + e.Name + "\n"
}

// checkName refuses names that would not survive a round trip through a
// key line.
func checkName(name string) error {
	if name != strings.TrimSpace(name) {
		return errors.New("key name has leading or trailing white space")
	}
	for _, r := range name {
		if unicode.IsControl(r) && r != '\t' {
			return errors.New("key name contains a control character")
		}
	}
	return nil
}

// LoadAuthorizedKeysFile reads an authorized-keys file (see
// ParseAuthorizedKeys).
func LoadAuthorizedKeysFile(path string) (AuthorizedKeys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secsock: authorized keys file: %w", err)
	}
	defer f.Close()
	aks, err := ParseAuthorizedKeys(f)
	if err != nil {
		return nil, withPath(path, err)
	}
	return aks, nil
}

// ReloadAuthorizedKeys reads the authorized-keys file at path and makes it
// the REP socket's OptionAuthorizedKeys. It is safe while serving:
// requests already delivered are answered normally, and requests received
// afterwards are checked against the new list. The reload is atomic: if
// the file cannot be read or has an error, the socket keeps its current
// list and the error is returned. An empty file authorizes no client
// (anonymous ones still follow OptionAllowAnonymous).
func (s *Socket) ReloadAuthorizedKeys(path string) (AuthorizedKeys, error) {
	if !s.server {
		return nil, fmt.Errorf("secsock: ReloadAuthorizedKeys needs a REP socket: %w", mangos.ErrProtoOp)
	}
	aks, err := LoadAuthorizedKeysFile(path)
	if err != nil {
		return nil, err
	}
	if err := s.SetOption(OptionAuthorizedKeys, aks.Keys()); err != nil {
		return nil, err
	}
	return aks, nil
}

func readLimited(r io.Reader, path string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxKeyFileSize+1))
	if err != nil {
		clear(data)
		return nil, fmt.Errorf("secsock: reading %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		clear(data)
		return nil, &FileError{Path: path, Msg: fmt.Sprintf("larger than %d bytes: not a key file", maxKeyFileSize)}
	}
	return data, nil
}

// writeNewFile creates path with data and mode perm, atomically and
// without ever replacing an existing file: it writes a temporary file in
// the same directory (O_CREATE|O_EXCL, mode 0600), syncs it, then hard
// links it to path, which fails if path exists. On file systems without
// hard links it falls back to creating path with O_EXCL directly.
func writeNewFile(path string, data []byte, perm fs.FileMode) (err error) {
	exists := func() error {
		return &FileError{Path: path, Msg: "file already exists; not overwriting it", Err: fs.ErrExist}
	}
	if _, err := os.Lstat(path); err == nil {
		return exists()
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("secsock: writing %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := writeSync(tmp, data, perm); err != nil {
		return fmt.Errorf("secsock: writing %s: %w", path, err)
	}
	if lerr := os.Link(tmpName, path); lerr != nil {
		if errors.Is(lerr, fs.ErrExist) {
			return exists()
		}
		// No hard links here (some network or FUSE file systems):
		// create the file itself exclusively instead.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return exists()
			}
			return fmt.Errorf("secsock: writing %s: %w", path, err)
		}
		if err := writeSync(f, data, perm); err != nil {
			os.Remove(path)
			return fmt.Errorf("secsock: writing %s: %w", path, err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the new name durable; not all systems support it
		d.Close()
	}
	return nil
}

// replaceFile writes data to path atomically, replacing what was there:
// a temporary file in the same directory (mode perm), synced, renamed over
// path, and the directory synced. The old contents' disk blocks are not
// wiped (SPEC.md §14.4).
func replaceFile(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("secsock: writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := writeSync(tmp, data, perm); err != nil {
		return fmt.Errorf("secsock: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("secsock: writing %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func writeSync(f *os.File, data []byte, perm fs.FileMode) error {
	_, err := f.Write(data)
	if err == nil && runtime.GOOS != "windows" {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
