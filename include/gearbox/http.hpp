// The HTTP component (gearbox::http) in one include: messages, the router, the HTTP/1.1
// server, the libcurl client and URLs. Link gearbox::http (find_package(gearbox
// COMPONENTS http)); it brings gearbox::gearbox with it.
//
//   #include <gearbox/http.hpp>
//   namespace http = gearbox::http;
#pragma once

#include <gearbox/http/client.hpp>
#include <gearbox/http/message.hpp>
#include <gearbox/http/router.hpp>
#include <gearbox/http/server.hpp>
#include <gearbox/http/url.hpp>
