// Package ci holds what CI systems call to run xmppcheck — a GitHub Action
// (github/action.yml), a GitLab CI template (gitlab/xmppcheck.gitlab-ci.yml)
// — and the tests that check their scripts. It has no Go API.
package ci
