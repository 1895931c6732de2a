package s3

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
)

// The go.mod of the project has aws-sdk-go-v2's credentials module but not
// its config module (the one with LoadDefaultConfig), so the default chain
// is assembled here from what the credentials module offers, in the SDK's
// order: environment, shared credentials file, container endpoint (ECS
// task roles, EKS pod identity). EC2 instance roles (IMDS), SSO and web
// identity need the config module.

// envLookup reads an environment variable (os.LookupEnv in production).
type envLookup func(string) (string, bool)

func (e envLookup) get(names ...string) string {
	for _, n := range names {
		if v, ok := e(n); ok && v != "" {
			return v
		}
	}
	return ""
}

// resolveRegion picks the region: the option, then AWS_REGION and
// AWS_DEFAULT_REGION, then us-east-1.
func resolveRegion(o Options, env envLookup) string {
	if o.Region != "" {
		return o.Region
	}
	if r := env.get("AWS_REGION", "AWS_DEFAULT_REGION"); r != "" {
		return r
	}
	return DefaultRegion
}

// credentialsProvider returns the static credentials of the options, or
// the default chain when they are empty.
func credentialsProvider(o Options, env envLookup, hc *http.Client) aws.CredentialsProvider {
	if o.AccessKeyID != "" {
		return credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken)
	}
	return aws.NewCredentialsCache(&chainProvider{env: env, hc: hc})
}

type chainProvider struct {
	env envLookup
	hc  *http.Client
}

var errNoCredentials = errors.New("no AWS credentials: set access_key_id/secret_access_key, " +
	"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a shared credentials file profile, or a container credentials endpoint")

// Retrieve tries each source in turn; the first that has credentials wins.
func (c *chainProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if id, secret := c.env.get("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"), c.env.get("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"); id != "" && secret != "" {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: c.env.get("AWS_SESSION_TOKEN"), Source: "Environment"}, nil
	}
	creds, found, err := c.sharedFile()
	if err != nil {
		return aws.Credentials{}, err
	}
	if found {
		return creds, nil
	}
	if p := c.containerProvider(); p != nil {
		return p.Retrieve(ctx)
	}
	return aws.Credentials{}, errNoCredentials
}

// sharedFile reads the profile (AWS_PROFILE, else "default") of the
// shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
// ~/.aws/credentials). A missing file or profile is not an error.
func (c *chainProvider) sharedFile() (aws.Credentials, bool, error) {
	path := c.env.get("AWS_SHARED_CREDENTIALS_FILE")
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return aws.Credentials{}, false, nil
		}
		path = filepath.Join(home, ".aws", "credentials")
	}
	profile := c.env.get("AWS_PROFILE")
	if profile == "" {
		profile = "default"
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return aws.Credentials{}, false, nil
		}
		return aws.Credentials{}, false, fmt.Errorf("shared credentials file: %w", err)
	}
	defer f.Close()
	vals := map[string]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			in = strings.TrimSpace(line[1:len(line)-1]) == profile
		case in:
			if k, v, ok := strings.Cut(line, "="); ok {
				vals[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return aws.Credentials{}, false, fmt.Errorf("shared credentials file %s: %w", path, err)
	}
	id, secret := vals["aws_access_key_id"], vals["aws_secret_access_key"]
	if id == "" || secret == "" {
		return aws.Credentials{}, false, nil
	}
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: vals["aws_session_token"],
		Source: "SharedCredentialsFile"}, true, nil
}

// containerProvider is the ECS/EKS container credentials endpoint, when
// the environment names one.
func (c *chainProvider) containerProvider() aws.CredentialsProvider {
	endpoint := c.env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	if rel := c.env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel != "" {
		endpoint = "http://169.254.170.2" + rel
	}
	if endpoint == "" {
		return nil
	}
	return endpointcreds.New(endpoint, func(o *endpointcreds.Options) {
		o.HTTPClient = c.hc
		if tok := c.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"); tok != "" {
			o.AuthorizationToken = tok
		} else if file := c.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); file != "" {
			o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
				b, err := os.ReadFile(file)
				if err != nil {
					return "", fmt.Errorf("container authorization token: %w", err)
				}
				return strings.TrimSpace(string(b)), nil
			})
		}
	})
}
