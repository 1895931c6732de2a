package config

import (
	"path"
	"strconv"
	"strings"
)

// Authentication modes (the auth block's mode).
const (
	// AuthNone accepts every request, signed or not: for trusted
	// networks only (the default when no key is configured).
	AuthNone = "none"
	// AuthSigV4 requires AWS Signature Version 4 with one of the keys
	// (the default when keys are configured).
	AuthSigV4 = "sigv4"
)

// Actions a grant may name, in IAM's vocabulary; "firehose:*" is every one.
var Actions = []string{
	"firehose:PutRecord", "firehose:PutRecordBatch", "firehose:DescribeDeliveryStream",
	"firehose:ListDeliveryStreams", "firehose:ListTagsForDeliveryStream",
}

// Auth is how the Firehose API authenticates and authorizes requests.
type Auth struct {
	// Mode is AuthNone or AuthSigV4; empty means AuthSigV4 when Keys are
	// listed, else AuthNone (see Required).
	Mode string `yaml:"mode"`
	// Region, when set, is the only region a signature's credential
	// scope may name; empty accepts any.
	Region string `yaml:"region"`
	// Keys are the access keys that may call the API.
	Keys []AccessKey `yaml:"keys"`
}

// AccessKey is one access key and what it may do.
type AccessKey struct {
	AccessKeyID string `yaml:"access_key_id"`
	// SecretAccessKey (write it as ${ENV}) or SecretAccessKeyFile (read
	// at start, surrounding whitespace trimmed): exactly one.
	SecretAccessKey     string `yaml:"secret_access_key"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	// SessionToken, when set, must come with every request signed with
	// the key (temporary credentials).
	SessionToken string `yaml:"session_token"`
	// Allow lists what the key may do; empty allows every action on
	// every stream.
	Allow []Grant `yaml:"allow"`
}

// Required reports whether requests must be signed: mode sigv4, written
// or implied by keys.
func (a Auth) Required() bool {
	return a.Mode == AuthSigV4 || a.Mode == "" && len(a.Keys) > 0
}

// Grant allows actions on streams.
type Grant struct {
	// Actions are IAM action names (Actions, or "firehose:*"),
	// case-insensitive as in IAM.
	Actions []string `yaml:"actions"`
	// Streams are stream names or glob patterns (*, ?, [a-z]); empty
	// means every stream.
	Streams []string `yaml:"streams"`
}

// Allows reports whether g allows action on stream.
func (g Grant) Allows(action, stream string) bool {
	ok := false
	for _, a := range g.Actions {
		if strings.EqualFold(a, action) || strings.EqualFold(a, "firehose:*") {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	if len(g.Streams) == 0 {
		return true
	}
	for _, p := range g.Streams {
		if m, _ := path.Match(p, stream); m {
			return true
		}
	}
	return false
}

// Allows reports whether k may do action on stream.
func (k AccessKey) Allows(action, stream string) bool {
	if len(k.Allow) == 0 {
		return true
	}
	for _, g := range k.Allow {
		if g.Allows(action, stream) {
			return true
		}
	}
	return false
}

func (d *decoder) validateAuth(a *Auth, top Pos) {
	switch a.Mode {
	case "":
	case AuthNone:
		if len(a.Keys) > 0 {
			d.fail(&a.Mode, top, "auth.mode", "is none, but keys are listed: remove them, or use mode sigv4")
		}
	case AuthSigV4:
		if len(a.Keys) == 0 {
			d.fail(&a.Mode, top, "auth.keys", "mode sigv4 needs at least one key")
		}
	default:
		d.fail(&a.Mode, top, "auth.mode", "invalid mode %q (want none or sigv4)", a.Mode)
	}
	if a.Region != "" && !validRegion(a.Region) {
		d.fail(&a.Region, top, "auth.region", "invalid region %q (e.g. \"us-east-1\")", a.Region)
	}
	seen := map[string]bool{}
	for i := range a.Keys {
		k := &a.Keys[i]
		p := "auth.keys[" + strconv.Itoa(i) + "]"
		switch {
		case !validKeyID(k.AccessKeyID):
			d.fail(&k.AccessKeyID, top, p+".access_key_id", "must be 16 to 128 letters and digits, got %q", k.AccessKeyID)
		case seen[k.AccessKeyID]:
			d.fail(&k.AccessKeyID, top, p+".access_key_id", "%s is listed twice", k.AccessKeyID)
		}
		seen[k.AccessKeyID] = true
		switch {
		case k.SecretAccessKey == "" && k.SecretAccessKeyFile == "":
			d.fail(&k.SecretAccessKey, d.at(&k.AccessKeyID, top), p+".secret_access_key", "is required (or secret_access_key_file)")
		case k.SecretAccessKey != "" && k.SecretAccessKeyFile != "":
			d.fail(&k.SecretAccessKeyFile, top, p+".secret_access_key_file", "set secret_access_key or secret_access_key_file, not both")
		}
		for j := range k.Allow {
			g := &k.Allow[j]
			gp := p + ".allow[" + strconv.Itoa(j) + "]"
			if len(g.Actions) == 0 {
				d.fail(&g.Actions, d.at(&k.AccessKeyID, top), gp+".actions", "is required: the actions the key may do, e.g. [firehose:PutRecordBatch]")
			}
			for _, act := range g.Actions {
				if !knownAction(act) {
					d.fail(&g.Actions, top, gp+".actions", "unknown action %q (want firehose:* or one of %s)", act, strings.Join(Actions, ", "))
				}
			}
			for _, s := range g.Streams {
				if _, err := path.Match(s, ""); err != nil || s == "" {
					d.fail(&g.Streams, top, gp+".streams", "invalid stream pattern %q", s)
				}
			}
		}
	}
}

func knownAction(a string) bool {
	if strings.EqualFold(a, "firehose:*") {
		return true
	}
	for _, x := range Actions {
		if strings.EqualFold(a, x) {
			return true
		}
	}
	return false
}

func validKeyID(s string) bool {
	if len(s) < 16 || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
