# Installing ADS, and its Debian package: `cpack -G DEB` in the build
# directory (tests/scripts/deb_package_test.sh builds, installs and runs it).
# The package holds ads and ads-agent (stripped), the systemd unit (not
# enabled: `systemctl enable --now ads`), the host and image scripts, the
# docs; its library dependencies come from dpkg-shlibdeps.
include(GNUInstallDirs)
install(TARGETS ads ads-agent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# the unit names the installed binary (packaging/ads.service names /usr/local/bin for a hand install)
file(READ ${CMAKE_SOURCE_DIR}/packaging/ads.service ADS_UNIT)
string(REPLACE "/usr/local/bin/" "/usr/bin/" ADS_UNIT "${ADS_UNIT}")
string(REPLACE "/usr/local/share/doc/" "/usr/share/doc/" ADS_UNIT "${ADS_UNIT}")
file(WRITE ${CMAKE_BINARY_DIR}/packaging/ads.service "${ADS_UNIT}")
install(FILES ${CMAKE_BINARY_DIR}/packaging/ads.service DESTINATION lib/systemd/system)
install(PROGRAMS scripts/build-image.sh scripts/lxd-host.sh scripts/lxcfs-mount.sh
        DESTINATION ${CMAKE_INSTALL_DATADIR}/ads/scripts)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
install(DIRECTORY examples/labs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/labs)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ads)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "ADS developers <dev@ads.local>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Auto Deployment Service: deploys labs from git into LXD containers, OpenVZ hosts or EC2")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# what ADS runs besides its libraries: git (libgit2 needs none, the lab tests
# do), LXD and its tools, the reverse proxy, debootstrap for the image
set(CPACK_DEBIAN_PACKAGE_DEPENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "lxd, lxd-client, haproxy, caddy, debootstrap, dnsmasq-base, lxcfs, btrfs-progs, ansible-core, bubblewrap, openssh-client, netcat-openbsd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql, chromium")
include(CPack)
