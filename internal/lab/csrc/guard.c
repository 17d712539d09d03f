// Loopback-only guard for programs started by the btslave test lab.
//
// Loaded with LD_PRELOAD, it wraps connect, sendto, sendmsg and sendmmsg.
// A call whose destination is outside 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104
// (and the prefix in BTSLAVE_LAB_NETNS, a network namespace's of the run's own)
// fails with ENETUNREACH before it reaches the kernel, and one line is appended
// to the file named by BTSLAVE_GUARD_LOG:
//
//	pid=<pid> func=<function> addr=<address>
//
// AF_UNIX, AF_UNSPEC and AF_NETLINK pass, and so do sends without an address
// (connected sockets). Calls that glibc makes internally (for example the
// DNS resolver's) do not go through these symbols and are not seen.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_ENV "BTSLAVE_GUARD_LOG"
#define NETNS_ENV "BTSLAVE_LAB_NETNS"

// The log opened at load time, for processes that later chroot (opentracker)
// and can no longer open the path. Its inode guards against the descriptor
// having been closed and its number reused.
static int early_fd = -1;
static dev_t early_dev;
static ino_t early_ino;

__attribute__((constructor)) static void guard_init(void) {
	const char *path = getenv(LOG_ENV);
	struct stat st;
	if (path == NULL || *path == '\0')
		return;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	// Move it out of the way of programs that expect low descriptors.
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 900);
	if (high >= 0) {
		close(fd);
		fd = high;
	}
	if (fstat(fd, &st) != 0) {
		close(fd);
		return;
	}
	early_fd = fd;
	early_dev = st.st_dev;
	early_ino = st.st_ino;
}

static void format_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t size) {
	char ip[INET6_ADDRSTRLEN];
	if (sa == NULL || len < (socklen_t)sizeof(sa_family_t)) {
		snprintf(buf, size, "(none)");
		return;
	}
	switch (sa->sa_family) {
	case AF_INET:
		if (len >= (socklen_t)sizeof(struct sockaddr_in)) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
			inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
			snprintf(buf, size, "%s:%u", ip, ntohs(in->sin_port));
			return;
		}
		break;
	case AF_INET6:
		if (len >= (socklen_t)sizeof(struct sockaddr_in6)) {
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
			snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
			return;
		}
		break;
	}
	snprintf(buf, size, "family-%d", (int)sa->sa_family);
}

static void guard_log(const char *fn, const struct sockaddr *sa, socklen_t len) {
	char addr[96], line[192];
	int saved = errno;
	format_addr(sa, len, addr, sizeof addr);
	int n = snprintf(line, sizeof line, "pid=%d func=%s addr=%s\n", (int)getpid(), fn, addr);
	if (n < 0)
		goto out;
	if (n >= (int)sizeof line)
		n = sizeof line - 1;

	const char *path = getenv(LOG_ENV);
	if (path != NULL && *path != '\0') {
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			ssize_t w = write(fd, line, n);
			(void)w;
			close(fd);
			goto out;
		}
	}
	struct stat st;
	if (early_fd >= 0 && fstat(early_fd, &st) == 0 && st.st_dev == early_dev && st.st_ino == early_ino) {
		ssize_t w = write(early_fd, line, n);
		(void)w;
		goto out;
	}
	// Last resort: stderr, so the refusal is at least visible.
	ssize_t w = write(2, line, n);
	(void)w;
out:
	errno = saved;
}

// in_netns reports whether ip (host order) is in the prefix named by
// NETNS_ENV, a network namespace's that the lab checked holds no interface
// but loopback (netns.go). Unset or malformed, no address is.
static int in_netns(uint32_t ip) {
	static int parsed;
	static uint32_t net, mask;
	if (!parsed) {
		const char *v = getenv(NETNS_ENV);
		char buf[32];
		const char *slash = v ? strchr(v, '/') : NULL;
		struct in_addr a;
		int bits = slash ? atoi(slash + 1) : 0;
		if (slash && slash - v < (long)sizeof buf && bits >= 8 && bits <= 16) {
			memcpy(buf, v, slash - v);
			buf[slash - v] = 0;
			if (inet_pton(AF_INET, buf, &a) == 1) {
				mask = ~0u << (32 - bits);
				net = ntohl(a.s_addr) & mask;
			}
		}
		parsed = 1;
	}
	return mask != 0 && (ip & mask) == net;
}

// allowed reports whether a destination may be used. An address too short to
// hold a family is left to the kernel, which rejects it with EINVAL; an inet
// address too short for its family is refused.
static int allowed(const struct sockaddr *sa, socklen_t len) {
	if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
		return 1;
	switch (sa->sa_family) {
	case AF_UNIX:
	case AF_UNSPEC:
	case AF_NETLINK:
		return 1;
	case AF_INET: {
		if (len < (socklen_t)sizeof(struct sockaddr_in))
			return 0;
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		uint32_t ip = ntohl(in->sin_addr.s_addr);
		return (ip >> 24) == 127 || in_netns(ip);
	}
	case AF_INET6: {
		if (len < (socklen_t)sizeof(struct sockaddr_in6))
			return 0;
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	default:
		return 0;
	}
}

#define NEXT(name) \
	static __typeof__(name) *next_##name; \
	if (next_##name == NULL) \
		next_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name); \
	if (next_##name == NULL) { \
		errno = ENOSYS; \
		return -1; \
	}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
	NEXT(connect);
	if (!allowed(addr, len)) {
		guard_log("connect", addr, len);
		errno = ENETUNREACH;
		return -1;
	}
	return next_connect(fd, addr, len);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len) {
	NEXT(sendto);
	if (addr != NULL && len > 0 && !allowed(addr, len)) {
		guard_log("sendto", addr, len);
		errno = ENETUNREACH;
		return -1;
	}
	return next_sendto(fd, buf, n, flags, addr, len);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
	NEXT(sendmsg);
	if (msg != NULL && msg->msg_name != NULL && msg->msg_namelen > 0 &&
	    !allowed(msg->msg_name, msg->msg_namelen)) {
		guard_log("sendmsg", msg->msg_name, msg->msg_namelen);
		errno = ENETUNREACH;
		return -1;
	}
	return next_sendmsg(fd, msg, flags);
}

int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags) {
	NEXT(sendmmsg);
	for (unsigned int i = 0; vec != NULL && i < vlen; i++) {
		const struct msghdr *msg = &vec[i].msg_hdr;
		if (msg->msg_name != NULL && msg->msg_namelen > 0 &&
		    !allowed(msg->msg_name, msg->msg_namelen)) {
			guard_log("sendmmsg", msg->msg_name, msg->msg_namelen);
			errno = ENETUNREACH;
			return -1;
		}
	}
	return next_sendmmsg(fd, vec, vlen, flags);
}
