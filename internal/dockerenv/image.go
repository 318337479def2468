package dockerenv

import "context"

// ImageExists reports whether the engine has the image ref locally (over
// the engine's API: no docker command-line tool needed).
func ImageExists(ctx context.Context, ref string) (bool, error) {
	Setup()
	return imageExists(ctx, ref)
}
