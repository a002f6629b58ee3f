/* The workshop's hello-world: a tiny static program, so the image needs nothing but itself. */
#include <unistd.h>

static const char message[] =
    "\nHello from Docker!\n"
    "This message shows that your installation appears to be working correctly.\n"
    "(reglab built this hello-world image locally, without Docker Hub.)\n\n";

int main(void) {
    return write(1, message, sizeof message - 1) == (ssize_t)(sizeof message - 1) ? 0 : 1;
}
