package assemble

import (
	"fmt"
	"os"
	"strings"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/ingest/sigv4"
)

// authHooks builds the Firehose API's authentication and authorization
// from the auth block: nil, nil without keys (every request accepted).
// Secrets given as files are read here, once.
func authHooks(a config.Auth) (*sigv4.Verifier, func(key, action, stream string) bool, error) {
	if !a.Required() {
		return nil, nil, nil
	}
	keys := make(map[string]config.AccessKey, len(a.Keys))
	secrets := make(map[string]sigv4.Key, len(a.Keys))
	for _, k := range a.Keys {
		secret := k.SecretAccessKey
		if k.SecretAccessKeyFile != "" {
			b, err := os.ReadFile(k.SecretAccessKeyFile)
			if err != nil {
				return nil, nil, fmt.Errorf("auth: the secret of access key %s: %w", k.AccessKeyID, err)
			}
			if secret = strings.TrimSpace(string(b)); secret == "" {
				return nil, nil, fmt.Errorf("auth: the secret of access key %s: %s is empty", k.AccessKeyID, k.SecretAccessKeyFile)
			}
		}
		keys[k.AccessKeyID] = k
		secrets[k.AccessKeyID] = sigv4.Key{ID: k.AccessKeyID, Secret: secret, SessionToken: k.SessionToken}
	}
	v := &sigv4.Verifier{Service: "firehose", Region: a.Region, Lookup: func(id string) (sigv4.Key, bool) {
		k, ok := secrets[id]
		return k, ok
	}}
	allow := func(key, action, stream string) bool {
		k, ok := keys[key]
		return ok && k.Allows(action, stream)
	}
	return v, allow, nil
}

// Warnings are what `sluice validate` points out in a valid configuration
// without refusing it.
func Warnings(cfg *config.Config) []string {
	var w []string
	if !cfg.Auth.Required() && !loopback(cfg.Listen) {
		w = append(w, fmt.Sprintf("listen %s is not a loopback address and auth is none: the Firehose API accepts every request, signed or not (add auth keys unless the network is trusted)", cfg.Listen))
	}
	return w
}
