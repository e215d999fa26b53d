/* SPDX-License-Identifier: MIT */
/*
 * tests/package/redis_consumer.c — a user of the installed hiredis adapter
 * (coev-redis.pc, coev::redis), built by tests/package/run.sh. It needs no
 * redis server: it binds a loopback socket without listening, so the
 * port is taken and refuses connections, and its task's
 * coev_redis_connect to that port must fail with -ECONNREFUSED, which
 * goes through the adapter, hiredis and the runtime's sockets.
 */
#include <coev.h>
#include <coev/redis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static int connect_task(void *arg)
{
	coev_redis_t *c = NULL;
	int r = coev_redis_connect("127.0.0.1", *(int *)arg,
				   coev_deadline(COEV_SEC(5)), &c);

	if (r != -ECONNREFUSED) {
		fprintf(stderr, "redis consumer: connect returned %d (%s)\n", r,
			coev_strerror(r));
		if (r == 0)
			coev_redis_close(c);
		return 1;
	}
	printf("redis consumer: task ran, connect refused\n");
	return 0;
}

int main(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port, r;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		perror("redis consumer: socket");
		return 1;
	}
	port = ntohs(sa.sin_port);
	r = coev_run(connect_task, &port, NULL);
	close(fd);
	return r;
}
