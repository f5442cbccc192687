/* hawkbit.conf parsing: defaults, every validation rule, error messages
 * naming file:line and key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/hawkbit_config.h"

#define BASE "[client]\nhawkbit_server=hb.example.com:8443\ntarget_name=dev1\n"
#define DEV "\n[device]\nhwRevision=2\nserial=  8922673153  \n"

static struct hawkbit_config *ok(const char *text)
{
	struct hawkbit_config *c = NULL;
	struct abota_error err = { 0 };
	if (hawkbit_config_parse(text, strlen(text), "hb.conf", &c, &err) < 0)
		fail_msg("parse failed: %s", err.msg);
	return c;
}

static void fails(const char *text, const char *needle)
{
	struct hawkbit_config *c = NULL;
	struct abota_error err = { 0 };
	assert_true(hawkbit_config_parse(text, strlen(text), "hb.conf", &c, &err) < 0);
	assert_null(c);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' lacks '%s'", err.msg, needle);
	assert_non_null(strstr(err.msg, "hb.conf"));
}

static void test_defaults(void **state)
{
	(void)state;
	struct hawkbit_config *c = ok(BASE "auth_token=abc\nbundle_download_location=/tmp/b\n" DEV);
	assert_string_equal(c->server, "hb.example.com:8443");
	assert_true(c->ssl);
	assert_true(c->ssl_verify);
	assert_string_equal(c->tenant, "DEFAULT");
	assert_int_equal(c->retry_wait, 300);
	assert_int_equal(c->timeout, 60);
	assert_int_equal(c->connect_timeout, 20);
	assert_false(c->post_update_reboot);
	assert_false(c->allow_redirects);
	assert_true(c->send_download_authentication);
	assert_true(c->report_installed_base);
	assert_string_equal(c->confirm_actions, "wait");
	assert_int_equal(c->stale_after, 7 * 86400); /* SC-104 */
	assert_int_equal(c->nattributes, 2);
	assert_string_equal(c->attributes[1].key, "serial");
	/* leading whitespace dropped by the key file, trailing by us */
	assert_string_equal(c->attributes[1].value, "8922673153");
	char *u = hawkbit_config_base_url(c);
	assert_string_equal(u, "https://hb.example.com:8443/DEFAULT/controller/v1/dev1");
	free(u);
	hawkbit_config_free(c);
	c = ok(BASE "gateway_token=g\nstream_bundle=true\nssl=false\ntenant_id=t1\n"
		    "allowed_download_hosts=cdn.example.com;[::1]:8080\nlog_level=debug\n" DEV);
	assert_null(c->download_location);
	assert_string_equal(c->allowed_download_hosts[1], "[::1]:8080");
	u = hawkbit_config_base_url(c);
	assert_string_equal(u, "http://hb.example.com:8443/t1/controller/v1/dev1");
	free(u);
	hawkbit_config_free(c);
	c = ok(BASE "ssl_cert=/c.pem\nssl_key=/k.pem\nstream_bundle=true\n" DEV);
	assert_string_equal(c->ssl_key, "/k.pem");
	hawkbit_config_free(c);
}

static void test_errors(void **state)
{
	(void)state;
	fails("[device]\na=b\n", "missing group [client]");
	fails("[client]\ntarget_name=d\nauth_token=a\nstream_bundle=true\n" DEV,
	      "missing key 'hawkbit_server'");
	fails(BASE "auth_token=a\nstream_bundle=true\n", "missing group [device]");
	fails(BASE "auth_token=a\nstream_bundle=true\n[device]\n", "at least one");
	fails(BASE "stream_bundle=true\n" DEV, "no authentication");
	fails(BASE "auth_token=a\ngateway_token=b\nstream_bundle=true\n" DEV,
	      "both 'auth_token' and 'gateway_token'");
	fails(BASE "auth_token=a\nssl_cert=/c\nssl_key=/k\nstream_bundle=true\n" DEV,
	      "both token and client certificate");
	fails(BASE "ssl_cert=/c\nstream_bundle=true\n" DEV, "must be set together");
	fails(BASE "ssl=false\nssl_cert=/c\nssl_key=/k\nstream_bundle=true\n" DEV, "needs ssl=true");
	fails(BASE "auth_token=a\n" DEV, "bundle_download_location");
	fails(BASE "auth_token=a\nbundle_download_location=rel/path\n" DEV, "absolute");
	fails(BASE "auth_token=a b\nstream_bundle=true\n" DEV, "whitespace");
	fails(BASE "auth_token=a\nstream_bundle=true\ntimeout=10\nconnect_timeout=20\n" DEV,
	      "exceeds 'timeout'");
	fails(BASE "auth_token=a\nstream_bundle=true\nretry_wait=0\n" DEV, "out of range");
	fails(BASE "auth_token=a\nstream_bundle=true\nstale_after=59\n" DEV, "stale_after");
	/* curl takes it as a long: 32 bits on armhf */
	fails(BASE "auth_token=a\nstream_bundle=true\nlow_speed_rate=2147483648\n" DEV, "out of range");
	fails(BASE "auth_token=a\nstream_bundle=true\nstale_after=31708801\n" DEV, "out of range");
	fails(BASE "auth_token=a\nstream_bundle=true\nssl=yes\n" DEV, "ssl");
	fails(BASE "auth_token=a\nstream_bundle=true\nlog_level=loud\n" DEV, "log_level");
	fails(BASE "auth_token=a\nstream_bundle=true\nfoo=1\n" DEV, "foo");
	fails(BASE "auth_token=a\nstream_bundle=true\nconfirm_actions=yes\n" DEV, "wait|auto|deny");
	fails(BASE "auth_token=a\nstream_bundle=true\n" DEV "[extra]\n", "extra");
	fails(BASE "auth_token=a\nstream_bundle=true\nallowed_download_hosts=http://x\n" DEV,
	      "not host[:port]");
	fails("[client]\nhawkbit_server=https://h\ntarget_name=d\nauth_token=a\nstream_bundle=true\n" DEV,
	      "not host[:port]");
	fails("[client]\nhawkbit_server=h:99999\ntarget_name=d\nauth_token=a\nstream_bundle=true\n" DEV,
	      "not host[:port]");
	fails("[client]\nhawkbit_server=h/x\ntarget_name=d\nauth_token=a\nstream_bundle=true\n" DEV,
	      "not host[:port]");
	fails("[client]\nhawkbit_server=h\ntarget_name=a/b\nauth_token=a\nstream_bundle=true\n" DEV,
	      "controller id");
	char *longv = malloc(400);
	snprintf(longv, 400, BASE "auth_token=a\nstream_bundle=true\n[device]\nk=%0200d\n", 1);
	fails(longv, "128 characters");
	free(longv);
	/* line number of the offending key */
	fails(BASE "auth_token=a\nstream_bundle=true\nretry_wait=x\n" DEV, "hb.conf:6");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
